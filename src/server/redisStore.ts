import type { RefreshStore } from './store.js'

/**
 * The few commands of a connected node-redis (`redis` package, v4/v5) client that the store
 * uses. Typed structurally: the package is not a dependency of session-keeper.
 */
export interface NodeRedisLike {
  get(key: string): Promise<string | null>
  set(key: string, value: string, options: { PX: number; NX?: true }): Promise<string | null>
  del(key: string): Promise<number>
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>
}

export interface RedisStoreOptions {
  /** Prefix before every key (the proxy's own keys are `sk:v1:…`). @default '' */
  prefix?: string
}

/** INCR, and the expiry only on the first increment: a fixed window that cannot live forever. */
const INCREMENT = "local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return n"

/**
 * A `RefreshStore` in Redis, shared by every instance of the proxy: refresh results for
 * idempotent replay (sealed, see the README), in-flight claims, rate-limit and budget counters,
 * and what was learned about Clerk. Every key has a TTL. Calls are not retried here: the proxy
 * bounds each call with `storeTimeoutMs` and falls back to its own memory.
 *
 * @example
 * import { createClient } from 'redis'
 * const redis = await createClient({ url: process.env.REDIS_URL, disableClientInfo: true }).connect()
 * const handler = createRefreshHandler({ secretKey, publishableKey, store: createRedisStore(redis) })
 */
export function createRedisStore(client: NodeRedisLike, options: RedisStoreOptions = {}): RefreshStore {
  const prefix = options.prefix ?? ''
  const ttl = (ms: number) => Math.max(1, Math.ceil(ms))
  return {
    get: (key) => client.get(prefix + key),
    async set(key, value, ttlMs, { onlyIfAbsent = false } = {}) {
      const answer = await client.set(prefix + key, value, onlyIfAbsent ? { PX: ttl(ttlMs), NX: true } : { PX: ttl(ttlMs) })
      return answer === 'OK'
    },
    async increment(key, ttlMs) {
      return Number(await client.eval(INCREMENT, { keys: [prefix + key], arguments: [String(ttl(ttlMs))] }))
    },
    async delete(key) {
      await client.del(prefix + key)
    },
  }
}
