/**
 * The emulator for `bench:fleet`, in a process of its own: `n` sessions created up front (their
 * tokens written to a file for the load generator), 100 ms of latency on every call, and
 * `GET /bench/stats` for the counters.
 */
import { writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { toNodeHandler } from '../../src/server/index.js'
import { createClerkEmulator } from '../../src/testing/index.js'
import { listen } from '../helpers/servers.js'

const [file, count, lifetime, origin] = process.argv.slice(2) as [string, string, string, string]
const clerk = createClerkEmulator({ tokenLifetimeSeconds: Number(lifetime), unexpiredTokens: 'accept' })
const sessions = Array.from({ length: Number(count) }, () => {
  const { sessionId, sessionToken, refreshToken } = clerk.createSession({ origin })
  return { sessionId, sessionToken, refreshToken }
})
clerk.setFaults({ latencyMs: 100 })
const api = toNodeHandler(clerk.handler, { maxBodyBytes: 1 << 16 })
const apiUrl = await listen(
  createServer((req, res) => {
    if (req.url === '/bench/stats') return void res.end(JSON.stringify(clerk.stats()))
    void api(req, res)
  }),
)
writeFileSync(
  file,
  JSON.stringify({ apiUrl, secretKey: clerk.secretKey, publishableKey: clerk.publishableKey, cookieSuffix: clerk.cookieSuffix, sessions }),
)
process.on('SIGTERM', () => process.exit(0))
setTimeout(() => process.exit(0), 600_000).unref()
