/**
 * npm run bench:fleet — three proxy instances (processes) on one redis-server, the emulator (its
 * own process, 100 ms per call) and a load generator (another process) simulating N signed-in
 * users, each refreshing once per cycle, 5 % of them losing the answer and retrying at once. For
 * N = 1,000 and 10,000: upstream calls per session per cycle, "consumed" answers, sign-outs and
 * recovery answers, the latency the proxy and Redis add over a direct emulator call, and Redis
 * commands per refresh. All on 127.0.0.1; bounded, stops by itself (a few minutes).
 */
import { execFile, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { createClient } from 'redis'
import { startFleet } from '../helpers/fleet.js'
import { startRedis } from '../helpers/redis.js'

const run = promisify(execFile)
const USERS = (process.env.BENCH_USERS ?? '1000,10000').split(',').map(Number)
const LIFETIME_S = Number(process.env.BENCH_LIFETIME_S ?? 30)
const CYCLES = Number(process.env.BENCH_CYCLES ?? 2)
const DROP = 0.05
const ORIGIN = 'http://app.bench.test'
const here = (path: string) => new URL(path, import.meta.url).pathname

async function emulator(users: number) {
  const file = join(mkdtempSync(join(tmpdir(), 'sk-fleet-')), 'emulator.json')
  // One more batch of sessions for the direct baseline.
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', here('./fleet-emulator.ts'), file, String(users + 200), String(LIFETIME_S), ORIGIN],
    { stdio: 'inherit' },
  )
  for (let i = 0; i < 1200 && !existsSync(file); i++) await new Promise((resolve) => setTimeout(resolve, 100))
  await new Promise((resolve) => setTimeout(resolve, 200))
  const info = JSON.parse(readFileSync(file, 'utf8')) as {
    apiUrl: string
    secretKey: string
    publishableKey: string
    cookieSuffix: string
    sessions: { sessionId: string; sessionToken: string; refreshToken: string }[]
  }
  const stats = async () =>
    (await (await fetch(`${info.apiUrl}/bench/stats`)).json()) as { refreshes: number; byCode: Record<string, number> }
  return { ...info, stats, stop: () => child.kill('SIGTERM') }
}

/** Direct refreshes at the emulator, the baseline the proxy's latency is compared with. */
async function direct(info: Awaited<ReturnType<typeof emulator>>, sessions: typeof info.sessions) {
  const latencies: number[] = []
  for (let i = 0; i < sessions.length; i += 20) {
    await Promise.all(
      sessions.slice(i, i + 20).map(async (s) => {
        const started = performance.now()
        await fetch(`${info.apiUrl}/v1/sessions/${s.sessionId}/refresh`, {
          method: 'POST',
          headers: { authorization: `Bearer ${info.secretKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ expired_token: s.sessionToken, refresh_token: s.refreshToken, request_origin: ORIGIN, format: 'token' }),
        })
        latencies.push(performance.now() - started)
      }),
    )
  }
  latencies.sort((a, b) => a - b)
  return { p50: latencies[Math.floor(latencies.length / 2)]!, p99: latencies[Math.floor(latencies.length * 0.99)]! }
}

const redis = await startRedis()
const probe = await createClient({ url: redis.url }).connect()
const commands = async () => Number(/total_commands_processed:(\d+)/.exec(await probe.info('stats'))![1])
const rows = []
for (const users of USERS) {
  const info = await emulator(users)
  const fleet = await startFleet(3, {
    redisUrl: redis.url,
    secretKey: info.secretKey,
    publishableKey: info.publishableKey,
    apiUrl: info.apiUrl,
    origin: ORIGIN,
    // All load comes from 127.0.0.1, and the emulator has no quota: the limits would only measure themselves.
    rateLimit: false,
    upstreamBudget: false,
    events: false,
    timeoutMs: 10_000,
    // Five processes and Redis share two cores here: a saturated machine, not a slow Redis.
    storeTimeoutMs: 1_000,
  })
  const baseline = await direct(info, info.sessions.slice(users))
  const before = { refreshes: (await info.stats()).refreshes, commands: await commands() }
  const job = join(mkdtempSync(join(tmpdir(), 'sk-fleet-load-')), 'job.json')
  writeFileSync(
    job,
    JSON.stringify({
      front: fleet.url,
      origin: ORIGIN,
      cookieSuffix: info.cookieSuffix,
      sessions: info.sessions.slice(0, users),
      lifetimeS: LIFETIME_S,
      cycles: CYCLES,
      dropFraction: DROP,
    }),
  )
  const { stdout } = await run(process.execPath, ['--import', 'tsx', here('./fleet-load.ts'), job], { maxBuffer: 1 << 24 })
  const load = JSON.parse(stdout.trim().split('\n').at(-1)!)
  const after = await info.stats()
  const upstream = after.refreshes - before.refreshes
  const redisCommands = (await commands()) - before.commands
  rows.push({
    users,
    cycles: CYCLES,
    refreshes: load.refreshes,
    dropped: load.dropped,
    upstreamPerSessionPerCycle: upstream / (users * CYCLES),
    consumed: after.byCode.session_refresh_expired_session_token_consumed ?? 0,
    signOuts: load.statuses['401'] ?? 0,
    recoveries: load.statuses['409'] ?? 0,
    otherFailures: load.refreshes - (load.statuses['200'] ?? 0) - (load.statuses['401'] ?? 0) - (load.statuses['409'] ?? 0),
    proxyP50: load.p50,
    proxyP99: load.p99,
    directP50: baseline.p50,
    directP99: baseline.p99,
    redisCommandsPerRefresh: redisCommands / load.refreshes,
    seconds: load.seconds,
  })
  await fleet.close()
  info.stop()
}
await probe.quit()
await redis.stop()

const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, Node ${process.version}`
mkdirSync(here('./results'), { recursive: true })
writeFileSync(
  here('./results/fleet.json'),
  JSON.stringify({ date: new Date().toISOString(), machine, lifetimeSeconds: LIFETIME_S, rows }, null, 2),
)
const f = (n: number, d = 1) => n.toFixed(d)
console.log(
  `\nnpm run bench:fleet — ${new Date().toISOString().slice(0, 10)}, ${machine}; 3 proxies, 1 Redis, emulator at 100 ms, ${LIFETIME_S} s tokens, ${CYCLES} cycles, ${DROP * 100} % of answers lost and retried\n`,
)
console.log(
  '| users | refreshes | lost + retried | upstream calls per session per cycle | consumed | sign-outs | recovery | other failures | latency p50 / p99: through 3 proxies + Redis | direct | added p50 | Redis commands per refresh |',
)
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|')
for (const r of rows) {
  console.log(
    `| ${r.users} | ${r.refreshes} | ${r.dropped} | ${f(r.upstreamPerSessionPerCycle, 3)} | ${r.consumed} | ${r.signOuts} | ${r.recoveries} | ${r.otherFailures} | ${f(r.proxyP50)} / ${f(r.proxyP99)} ms | ${f(r.directP50)} / ${f(r.directP99)} ms | +${f(r.proxyP50 - r.directP50)} ms | ${f(r.redisCommandsPerRefresh)} |`,
  )
}
const ok = rows.every(
  (r) => Math.abs(r.upstreamPerSessionPerCycle - 1) < 0.005 && r.consumed === 0 && r.signOuts === 0 && r.recoveries === 0,
)
process.exit(ok ? 0 : 1)
