/**
 * One instance of the proxy, in a process of its own, for the fleet tests and `bench:fleet`:
 * `createRefreshHandler` with a `createRedisStore` on a node-redis client, behind `toNodeHandler`
 * on a free 127.0.0.1 port. Configured by one JSON argument; prints `{"port": n}` once
 * listening, then one JSON line per refresh event.
 */
import { createServer } from 'node:http'
import { createClient } from 'redis'
import { createRedisStore, createRefreshHandler, toNodeHandler, type RefreshHandlerOptions } from '../../src/server/index.js'

const config = JSON.parse(process.argv[2]!) as { redisUrl: string; events?: boolean } & Partial<RefreshHandlerOptions>
const { redisUrl, events = true, ...options } = config
// disableClientInfo: node-redis 5.9 sends CLIENT SETINFO on every connect and ignores its errors,
// so a reconnect that lands on a Redis being killed (its port still completes the handshake) is
// "ready" on a dead socket and never reconnects again: every command then hangs, and the store
// answers from memory for good. Without those commands the socket's error comes after "ready",
// and node-redis reconnects.
const redis = createClient({ url: redisUrl, disableClientInfo: true, socket: { reconnectStrategy: () => 100, connectTimeout: 500 } })
redis.on('error', () => {}) // a dead Redis is reported per request in onEvent, as `store: 'degraded'`
await redis.connect()
const handler = createRefreshHandler({
  ...(options as RefreshHandlerOptions),
  store: createRedisStore(redis),
  onEvent: events ? (event) => process.stdout.write(`${JSON.stringify({ event })}\n`) : undefined,
})
const server = createServer(toNodeHandler(handler))
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`)
})
process.on('SIGTERM', () => process.exit(0))
setTimeout(() => process.exit(0), Number(process.env.FLEET_MAX_SECONDS ?? 600) * 1000).unref()
