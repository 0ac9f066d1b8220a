/**
 * npm run bench [-- --engine chromium|firefox|webkit|all] — session-keeper in real browsers
 * against its goals, in each engine, under both of Clerk's possible policies for unexpired tokens
 * (the emulator's `unexpiredTokens: 'accept' | 'refuse'`). The emulator and the proxy run on
 * 127.0.0.1; tabs are tabs of one browser profile loading the <script> build: tab 0 in front, the
 * others behind it, hidden as the engine hides background tabs. Prints a table per engine and a
 * summary, writes test/bench/results/browser.json, and exits non-zero when a goal is missed.
 * Bounded: every wait has a deadline; about 4 minutes per engine on 2 cores.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { charts } from './charts.js'
import { type Adopted, propagationTimes, RECORD_ADOPTED, rawFanout } from './fanout.js'
import { percentile } from './percentile.js'
import { cpus } from 'node:os'
import { parseArgs } from 'node:util'
import { startApp, type App } from '../helpers/app.js'
import { ALL_ENGINES, launchEngine, type Engine, type EngineName, type Session, type Tab } from '../browser/drivers/index.js'

const LIFETIME_S = Number(process.env.BENCH_LIFETIME_S ?? 6)
const GENERATIONS = Number(process.env.BENCH_GENERATIONS ?? 6)
const TAB_COUNTS = (process.env.BENCH_TABS ?? '1,10').split(',').map(Number)
const FAILOVER_TRIALS = Number(process.env.BENCH_FAILOVER_TRIALS ?? 2)
const POLICIES = ['accept', 'refuse'] as const
type Policy = (typeof POLICIES)[number]

const { values } = parseArgs({ options: { engine: { type: 'string', default: 'all' } } })
const ENGINES: EngineName[] = values.engine === 'all' ? [...ALL_ENGINES] : (values.engine!.split(',') as EngineName[])
for (const name of ENGINES)
  if (!ALL_ENGINES.includes(name)) throw new Error(`--engine: ${name} is not one of ${ALL_ENGINES.join(', ')}, all`)

/** In every page, before the library: when each token arrives, and getToken() sampled for expired answers. */
const INSTRUMENT = `
  window.__samples = 0; window.__expired = 0; window.__waits = [];
  ${RECORD_ADOPTED}
  setInterval(async () => {
    if (!window.sessionKeeper || window.sessionKeeper.getState().status === 'signedOut') return;
    try {
      const asked = performance.now();
      const token = await window.sessionKeeper.getToken();
      if (!token) return;
      window.__samples++;
      window.__waits.push(performance.now() - asked);
      const exp = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).exp;
      if (exp * 1000 <= Date.now()) window.__expired++;
    } catch (e) { window.__errors = (window.__errors || 0) + 1 }
  }, 100);
`

interface PageReport {
  adopted: Adopted[]
  samples: number
  expired: number
  waits: number[]
  hidden: boolean
  stats: Record<string, number>
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function openTabs(engine: Engine, app: App, count: number): Promise<{ session: Session; pages: Tab[] }> {
  const session = await engine.newSession()
  const pages = [await session.open(`${app.origin}/login`, 'front')]
  for (let i = 1; i < count; i++) pages.push(await session.open(app.origin, 'back'))
  for (const page of pages) await page.waitFor(() => window.sessionKeeper?.getState().status === 'active', undefined, { timeoutMs: 15_000 })
  return { session, pages }
}

const report = (page: Tab): Promise<PageReport> =>
  page.evaluate(() => {
    const w = window as unknown as { __adopted: Adopted[]; __samples: number; __expired: number; __waits: number[] }
    return {
      adopted: w.__adopted,
      samples: w.__samples,
      expired: w.__expired,
      waits: w.__waits,
      hidden: document.hidden,
      stats: { ...window.sessionKeeper!.getStats() },
    }
  })

async function cycles(engine: Engine, count: number, policy: Policy) {
  const app = await startApp({ tokenLifetimeSeconds: LIFETIME_S, unexpiredTokens: policy }, { head: INSTRUMENT })
  app.clerk.setFaults({ latencyMs: 20 })
  const { session, pages } = await openTabs(engine, app, count)
  await sleep(LIFETIME_S * 1000) // settle: every tab has seen a refresh cycle
  const before = await Promise.all(pages.map(report))
  const startIat = Math.max(...before[0]!.adopted.map((a) => a.iat))
  const refreshesBefore = app.clerk.stats().refreshes
  const requestsBefore = app.requests.length
  const started = Date.now()
  const deadline = started + GENERATIONS * LIFETIME_S * 1000 + 30_000
  let generations = 0
  while (Date.now() < deadline) {
    const mine = (await report(pages[0]!)).adopted.filter((a) => a.iat > startIat)
    generations = new Set(mine.map((a) => a.iat)).size
    if (generations >= GENERATIONS) break
    await sleep(100)
  }
  const refreshes = app.clerk.stats().refreshes - refreshesBefore
  const elapsedMs = Date.now() - started
  const requests = app.requests.slice(requestsBefore)
  const after = await Promise.all(pages.map(report))
  const raw = await rawFanout(pages)
  const refusedEarly = app.requests.filter((r) => r.code === 'not_yet_expired').length
  // Early refreshes that reached Clerk and were refused there: the proxy learns from the first.
  const refusedAtClerk = app.clerk.stats().byCode.session_refresh_session_token_ineligible ?? 0
  const consumed = app.clerk.stats().byCode.session_refresh_expired_session_token_consumed ?? 0
  await session.close()
  await app.close()

  // Time from the refresher holding the token (its response) to the last tab holding it.
  const propagation = propagationTimes(
    after.map((page) => page.adopted),
    count,
    startIat,
  )
  const lifetimes = elapsedMs / (LIFETIME_S * 1000)
  const idle = after.filter((page, i) => page.stats.refreshRequests === before[i]!.stats.refreshRequests)
  const idleCallbacks = idle.map(
    (page) => ((page.stats.timerCallbacks ?? 0) - (before[after.indexOf(page)]!.stats.timerCallbacks ?? 0)) / lifetimes,
  )
  const waited = after.flatMap((p) => p.waits).filter((w) => w > 5)
  // Which tab sent each accepted refresh: the front one, or a hidden one.
  const sentBy = after.map((p, i) => (p.stats.refreshRequests ?? 0) - (before[i]!.stats.refreshRequests ?? 0))
  return {
    policy,
    tabs: count,
    hiddenTabs: after.filter((p) => p.hidden).length,
    generations,
    refusedEarly,
    refusedAtClerk,
    consumed,
    getTokenWaitP50Ms: percentile(waited, 0.5),
    getTokenWaitP99Ms: percentile(waited, 0.99),
    waitedCalls: waited.length,
    rawFanoutP50Ms: percentile(raw, 0.5),
    rawFanoutP99Ms: percentile(raw, 0.99),
    refreshes,
    proxyRequests: requests.length,
    /** Seconds between consecutive accepted refreshes. */
    cadenceS: requests
      .filter((r) => r.status === 200)
      .map((r, i, all) => (i ? (r.at - all[i - 1]!.at) / 1000 : NaN))
      .filter(Number.isFinite),
    requestsByTab: sentBy,
    refreshesPerCycle: refreshes / Math.max(1, generations),
    expiredAnswers: after.reduce((sum, p) => sum + p.expired, 0),
    samples: after.reduce((sum, p) => sum + p.samples, 0),
    propagationP50Ms: percentile(propagation, 0.5),
    propagationP99Ms: percentile(propagation, 0.99),
    idleTabs: idle.length,
    timerCallbacksPerIdleTabPerLifetime: idleCallbacks.length ? Math.max(...idleCallbacks) : 0,
    messagesIgnored: after.reduce((sum, p) => sum + (p.stats.messagesIgnored ?? 0), 0),
  }
}

/**
 * The refresher is killed mid-refresh (its renderer crashed where the engine can, else the tab
 * closed); how long until another tab holds a fresh token. Measured with a Clerk that accepts
 * early refreshes: when it refuses them, no fresh token can exist before the old one expires,
 * and what counts is that no tab answers an expired token (the cycles above).
 */
async function failover(engine: Engine) {
  const app = await startApp({ tokenLifetimeSeconds: LIFETIME_S, unexpiredTokens: 'accept' }, { head: INSTRUMENT })
  const { session, pages } = await openTabs(engine, app, 6)
  // One refresh first, fast: the proxy's first call also fetches Clerk's JWKS to verify the token,
  // and with 400 ms a call that would double the in-flight call the survivors wait on.
  for (const deadline = Date.now() + LIFETIME_S * 2000; !app.requests.some((r) => r.status === 200) && Date.now() < deadline; )
    await sleep(50)
  app.clerk.setFaults({ latencyMs: 400 })
  await sleep(500)
  const sent = await Promise.all(pages.map((p) => p.evaluate(() => window.sessionKeeper!.getStats().refreshRequests)))
  let refresher: Tab | undefined
  for (const deadline = Date.now() + LIFETIME_S * 2000; !refresher && Date.now() < deadline; await sleep(10)) {
    const now = await Promise.all(pages.map((p) => p.evaluate(() => window.sessionKeeper!.getStats().refreshRequests)))
    refresher = pages.find((_, i) => now[i]! > sent[i]!)
  }
  if (!refresher) throw new Error('no tab refreshed')
  await sleep(50) // mid-refresh
  const survivors = pages.filter((p) => p !== refresher)
  // The newest token any survivor holds now: the one whose refresh is in flight.
  const generationBefore = Math.max(...(await Promise.all(survivors.map(report))).flatMap((r) => r.adopted.map((a) => a.iat)))
  const crashedAt = Date.now()
  const how = await refresher.crash() // the browser frees its Web Lock either way
  let recoveredAt = NaN
  for (const deadline = Date.now() + LIFETIME_S * 1000; Date.now() < deadline; await sleep(20)) {
    const fresh = (await Promise.all(survivors.map(report))).flatMap((r) => r.adopted).filter((a) => a.iat > generationBefore)
    if (fresh.length) {
      recoveredAt = Math.min(...fresh.map((a) => a.at))
      break
    }
  }
  await sleep(LIFETIME_S * 1000) // keep sampling through the next expiry
  const expired = (await Promise.all(survivors.map(report))).reduce((sum, r) => sum + r.expired, 0)
  await session.close()
  await app.close()
  return { how, recoveryMs: recoveredAt - crashedAt, expiredAnswers: expired }
}

function sizes() {
  let out: string
  try {
    out = execFileSync('npx', ['size-limit', '--json'], { encoding: 'utf8' })
  } catch (error) {
    out = (error as { stdout: string }).stdout
  }
  return (JSON.parse(out) as { name: string; size: number; passed: boolean }[]).map(({ name, size, passed }) => ({
    name,
    bytes: size,
    passed,
  }))
}

type Scenario = Awaited<ReturnType<typeof cycles>>
type Failover = Awaited<ReturnType<typeof failover>>

function goalsOf(engine: EngineName, scenarios: Scenario[], failovers: Failover[]) {
  const oneTab = (policy: Policy) => scenarios.find((s) => s.policy === policy && s.tabs === 1)!
  const ratio = (s: Scenario) => s.refreshes / oneTab(s.policy).refreshes
  const fanoutRatio = (s: Scenario) => s.propagationP50Ms / s.rawFanoutP50Ms
  const failoverMs = percentile(
    failovers.map((f) => f.recoveryMs),
    0.5,
  )
  const most = Math.max(...TAB_COUNTS)
  return [
    ...scenarios.map((s) => ({
      goal: `[${engine}] [${s.policy}] refreshes per cycle with ${s.tabs} tab(s) = 1.00`,
      value: s.refreshesPerCycle.toFixed(2),
      ok: s.refreshesPerCycle === 1,
    })),
    ...scenarios
      .filter((s) => s.tabs > 1)
      .map((s) => ({
        goal: `[${engine}] [${s.policy}] requests with ${s.tabs} tabs (${s.hiddenTabs} hidden) ÷ with 1 tab = 1.00`,
        value: ratio(s).toFixed(2),
        ok: ratio(s) === 1,
      })),
    ...POLICIES.map((policy) => ({
      // The first teaches the proxy the policy; then, while it learns Clerk's clock, a held request
      // sent at the middle of the estimate may be refused (at most 3 per hold): one halving each.
      goal: `[${engine}] [${policy}] early refreshes refused by Clerk, all runs ≤ 1 + 3 × 3 per run (the policy, then the first three holds' quarter steps)`,
      value: scenarios
        .filter((s) => s.policy === policy)
        .map((s) => `${s.refusedAtClerk} (503 to browsers: ${s.refusedEarly})`)
        .join(', '),
      ok: scenarios.filter((s) => s.policy === policy).every((s) => s.refusedAtClerk <= 10),
    })),
    {
      goal: `[${engine}] "consumed" answers from the emulator = 0`,
      value: String(scenarios.reduce((n, s) => n + s.consumed, 0)),
      ok: scenarios.every((s) => s.consumed === 0),
    },
    {
      goal: `[${engine}] getToken() answers with an expired token = 0`,
      value: String(scenarios.reduce((n, s) => n + s.expiredAnswers, 0) + failovers.reduce((n, f) => n + f.expiredAnswers, 0)),
      ok: scenarios.every((s) => s.expiredAnswers === 0) && failovers.every((f) => f.expiredAnswers === 0),
    },
    ...scenarios
      .filter((s) => s.tabs === most && most > 1)
      .map((s) => ({
        // Each tab also parses, validates and decodes the JWT and publishes its state; a bare message does none of that.
        goal: `[${engine}] [${s.policy}] propagation p50 at ${most} tabs ÷ raw BroadcastChannel fan-out p50 ≤ 4`,
        value: `${fanoutRatio(s).toFixed(2)} (${s.propagationP50Ms.toFixed(1)} / ${s.rawFanoutP50Ms.toFixed(1)} ms)`,
        ok: fanoutRatio(s) <= 4,
      })),
    {
      goal: `[${engine}] failover after the refresher ${failovers[0]?.how ?? 'died'} mid-refresh < 400 ms (median)`,
      value: `${failoverMs.toFixed(0)} ms`,
      ok: failoverMs < 400 && failovers.every((f) => Number.isFinite(f.recoveryMs)),
    },
    {
      goal: `[${engine}] timer callbacks per idle tab per lifetime ≤ 2`,
      value: Math.max(...scenarios.map((s) => s.timerCallbacksPerIdleTabPerLifetime)).toFixed(2),
      ok: scenarios.every((s) => s.timerCallbacksPerIdleTabPerLifetime <= 2),
    },
  ]
}

const started = Date.now()
const results: { engine: EngineName; version: string; seconds: number; scenarios: Scenario[]; failovers: Failover[] }[] = []
for (const name of ENGINES) {
  const engineStarted = Date.now()
  const engine = await launchEngine(name)
  try {
    const scenarios: Scenario[] = []
    for (const policy of POLICIES) for (const count of TAB_COUNTS) scenarios.push(await cycles(engine, count, policy))
    const failovers: Failover[] = []
    for (let i = 0; i < FAILOVER_TRIALS; i++) failovers.push(await failover(engine))
    results.push({ engine: name, version: engine.version, seconds: (Date.now() - engineStarted) / 1000, scenarios, failovers })
    console.log(`${engine.version}: done in ${((Date.now() - engineStarted) / 1000).toFixed(0)} s`)
  } finally {
    await engine.close()
  }
}
const bundle = sizes()
const goals = [
  ...results.flatMap((r) => goalsOf(r.engine, r.scenarios, r.failovers)),
  {
    goal: 'every entry within its size budget',
    value: bundle.map((b) => `${(b.bytes / 1000).toFixed(2)} kB`).join(' / '),
    ok: bundle.every((b) => b.passed),
  },
]
const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, Node ${process.version}`
const result = {
  date: new Date().toISOString(),
  machine,
  lifetimeSeconds: LIFETIME_S,
  generations: GENERATIONS,
  seconds: (Date.now() - started) / 1000,
  engines: results,
  bundle,
  goals,
}
mkdirSync(new URL('./results', import.meta.url), { recursive: true })
writeFileSync(new URL('./results/browser.json', import.meta.url), JSON.stringify(result, null, 2))
// The charts, next to the JSON (npm run docs:images copies them into docs/ for the README).
const peers = JSON.parse(readFileSync(new URL('./peers.json', import.meta.url), 'utf8'))
for (const [name, svg] of Object.entries(charts(peers, result))) writeFileSync(new URL(`./results/${name}`, import.meta.url), svg)

console.log(
  `\nnpm run bench — ${result.date.slice(0, 10)}, ${machine}; ${LIFETIME_S} s tokens, ${GENERATIONS} cycles per run, ${result.seconds.toFixed(0)} s in all\n`,
)
const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : '—')
for (const r of results) {
  const oneTab = (policy: Policy) => r.scenarios.find((s) => s.policy === policy && s.tabs === 1)!
  console.log(`\n${r.version} (${r.seconds.toFixed(0)} s)\n`)
  console.log(
    '| Clerk early refresh | tabs (hidden) | cycles | refreshes at the emulator | per cycle | ÷ 1 tab | seconds between refreshes, min / max | refused early | expired getToken() / samples | getToken() waits around expiry, p50 / p99 (n) | propagation p50 / p99 | ÷ raw BroadcastChannel p50 | timer callbacks per idle tab per lifetime |',
  )
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|')
  for (const s of r.scenarios) {
    const waits = s.waitedCalls ? `${s.getTokenWaitP50Ms.toFixed(0)} / ${s.getTokenWaitP99Ms.toFixed(0)} ms (${s.waitedCalls})` : '— (0)'
    const fan = s.tabs > 1 ? `${(s.propagationP50Ms / s.rawFanoutP50Ms).toFixed(2)}` : '—'
    const cadence = s.cadenceS.length ? `${Math.min(...s.cadenceS).toFixed(1)} / ${Math.max(...s.cadenceS).toFixed(1)}` : '—'
    console.log(
      `| ${s.policy} | ${s.tabs} (${s.hiddenTabs}) | ${s.generations} | ${s.refreshes} | ${s.refreshesPerCycle.toFixed(2)} | ${(s.refreshes / oneTab(s.policy).refreshes).toFixed(2)} | ${cadence} | ${s.refusedEarly} | ${s.expiredAnswers} / ${s.samples} | ${waits} | ${ms(s.propagationP50Ms)} / ${ms(s.propagationP99Ms)} ms | ${fan} | ${s.timerCallbacksPerIdleTabPerLifetime.toFixed(2)} |`,
    )
  }
  console.log(
    `\nfailover (6 tabs, refresher ${r.failovers[0]?.how} mid-refresh): ${r.failovers.map((f) => `${f.recoveryMs.toFixed(0)} ms`).join(', ')}; expired answers ${r.failovers.map((f) => f.expiredAnswers).join(', ')}`,
  )
}
// One line per engine: what the README quotes.
const most = Math.max(...TAB_COUNTS)
console.log(
  `\n| engine | ratio ${most} tabs ÷ 1 tab (accept / refuse) | expired getToken() / samples | propagation p50 / p99 at ${most} tabs (accept) | failover |\n|---|---|---|---|---|`,
)
for (const r of results) {
  const at = (policy: Policy, tabs: number) => r.scenarios.find((s) => s.policy === policy && s.tabs === tabs)!
  const ratio = (policy: Policy) => (at(policy, most).refreshes / at(policy, 1).refreshes).toFixed(2)
  const expired = r.scenarios.reduce((n, s) => n + s.expiredAnswers, 0) + r.failovers.reduce((n, f) => n + f.expiredAnswers, 0)
  const samples = r.scenarios.reduce((n, s) => n + s.samples, 0)
  const p = at('accept', most)
  console.log(
    `| ${r.version} | ${ratio('accept')} / ${ratio('refuse')} | ${expired} / ${samples} | ${ms(p.propagationP50Ms)} / ${ms(p.propagationP99Ms)} ms | ${r.failovers.map((f) => `${f.recoveryMs.toFixed(0)} ms`).join(', ')} (${r.failovers[0]?.how}) |`,
  )
}
console.log('\n| size (min+gzip) | bytes | within budget |\n|---|---|---|')
for (const b of bundle) console.log(`| ${b.name} | ${b.bytes} | ${b.passed ? 'yes' : 'NO'} |`)
console.log('\n| goal | measured | met |\n|---|---|---|')
for (const g of goals) console.log(`| ${g.goal} | ${g.value} | ${g.ok ? 'yes' : 'NO'} |`)
process.exit(goals.every((g) => g.ok) ? 0 : 1)

declare global {
  interface Window {
    sessionKeeper?: import('../../src/index.js').SessionKeeper
  }
}
