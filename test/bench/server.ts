/**
 * npm run bench:server — the proxy in front of the emulator on 127.0.0.1, loaded from a second
 * process (the emulator in a third), against the emulator called directly. Reports requests per second and the latency the
 * proxy adds, and writes bench/results/server.json. Bounded: about 30 s in all.
 */
import { execFile, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { createRefreshHandler, toNodeHandler } from '../../src/server/index.js'
import { close, listen } from '../helpers/servers.js'

const run = promisify(execFile)
const TOTAL = Number(process.env.BENCH_REQUESTS ?? 4000)
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16)
// Clerk refreshes each expired token once: every request in both paths carries a token of its own.
const SESSIONS = 2 * TOTAL
const ORIGIN = 'http://bench.local'

// The emulator runs in its own process; the proxy in this one; the load in a third.
const info = join(mkdtempSync(join(tmpdir(), 'sk-emulator-')), 'emulator.json')
const tsx = new URL('../../node_modules/.bin/tsx', import.meta.url).pathname
const child = spawn(tsx, [new URL('./emulator-process.ts', import.meta.url).pathname, info, String(SESSIONS)], { stdio: 'inherit' })
for (let i = 0; i < 300 && !existsSync(info); i++) await new Promise((resolve) => setTimeout(resolve, 100))
const clerk = JSON.parse(readFileSync(info, 'utf8')) as {
  apiUrl: string
  secretKey: string
  publishableKey: string
  cookieSuffix: string
  sessions: { sessionId: string; sessionToken: string; refreshToken: string }[]
}
const { apiUrl, sessions } = clerk
// No rate limit nor budget: every request comes from 127.0.0.1, and the emulator has no quota.
const proxy = createServer(
  toNodeHandler(
    createRefreshHandler({
      secretKey: clerk.secretKey,
      publishableKey: clerk.publishableKey,
      apiUrl,
      origin: ORIGIN,
      rateLimit: false,
      upstreamBudget: false,
    }),
  ),
)
const proxyUrl = await listen(proxy)

type Spec = { path: string; headers: Record<string, string>; body: string }
const direct: Spec[] = sessions.slice(0, TOTAL).map((s) => ({
  path: `/v1/sessions/${s.sessionId}/refresh`,
  headers: { authorization: `Bearer ${clerk.secretKey}`, 'content-type': 'application/json' },
  body: JSON.stringify({ expired_token: s.sessionToken, refresh_token: s.refreshToken, request_origin: ORIGIN, format: 'token' }),
}))
const viaProxy: Spec[] = sessions.slice(TOTAL).map((s) => ({
  path: '/api/session/refresh',
  headers: {
    'content-type': 'application/json',
    origin: ORIGIN,
    cookie: `__refresh_${clerk.cookieSuffix}=${s.refreshToken}`,
    'user-agent': 'bench',
  },
  body: JSON.stringify({ session_id: s.sessionId, expired_token: s.sessionToken }),
}))

async function load(target: string, requests: Spec[]) {
  const job = { target, requests, total: TOTAL, concurrency: CONCURRENCY, maxSeconds: 20 }
  const file = join(mkdtempSync(join(tmpdir(), 'sk-bench-')), 'job.json')
  writeFileSync(file, JSON.stringify(job))
  const { stdout } = await run(tsx, [new URL('./load.ts', import.meta.url).pathname, file], { maxBuffer: 1 << 24 })
  return JSON.parse(stdout.trim().split('\n').at(-1)!)
}

const baseline = await load(apiUrl, direct)
const proxied = await load(proxyUrl, viaProxy)
await close(proxy)
child.kill('SIGTERM')

const result = {
  date: new Date().toISOString(),
  machine: `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`,
  requests: TOTAL,
  concurrency: CONCURRENCY,
  direct: baseline,
  proxy: proxied,
  rpsRatio: proxied.rps / baseline.rps,
  addedLatencyP50Ms: proxied.p50 - baseline.p50,
  latencyRatioP50: proxied.p50 / baseline.p50,
}
mkdirSync(new URL('./results', import.meta.url), { recursive: true })
writeFileSync(new URL('./results/server.json', import.meta.url), JSON.stringify(result, null, 2))
const f = (n: number) => n.toFixed(2)
console.log(`\nbench:server — ${TOTAL} refreshes, ${CONCURRENCY} in flight, ${result.machine}\n`)
console.log('| path | req/s | p50 ms | p99 ms | statuses |')
console.log('|---|---|---|---|---|')
console.log(`| emulator directly | ${f(baseline.rps)} | ${f(baseline.p50)} | ${f(baseline.p99)} | ${JSON.stringify(baseline.statuses)} |`)
console.log(
  `| browser → proxy → emulator | ${f(proxied.rps)} | ${f(proxied.p50)} | ${f(proxied.p99)} | ${JSON.stringify(proxied.statuses)} |`,
)
console.log(
  `\nthroughput ratio proxy/direct: ${f(result.rpsRatio)}; p50 latency ratio: ${f(result.latencyRatioP50)} (+${f(result.addedLatencyP50Ms)} ms)`,
)
const failed = (proxied.statuses['200'] ?? 0) !== proxied.completed || (baseline.statuses['200'] ?? 0) !== baseline.completed
process.exit(failed ? 1 : 0)
