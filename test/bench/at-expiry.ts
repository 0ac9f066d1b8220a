/**
 * npx tsx test/bench/at-expiry.ts [--engine chromium,firefox] [--cycles 10] [--hold 2000] — how long
 * getToken() waits around expiry, the issue-19 setting: the built `<script>` bundle
 * (SESSION_KEEPER_IIFE=<path> for another build, e.g. an older one), session-keeper/server with
 * `holdMs` as given (0: a proxy that does not hold), the emulator with 100 ms upstream latency,
 * 4 tabs (3 hidden), 6 s tokens, getToken() every 50 ms in each tab (hidden tabs: as throttled).
 * Per engine and Clerk policy: the share of calls that waited (> 5 ms), the waits' p50 / p99 /
 * max once the proxy has learned Clerk's policy and clock (`--learn` cycles, 6 by default: the
 * first cycle discovers the policy, the next three narrow the lead's interval to a quarter each,
 * from about a second to 16 ms), the longest wait before, refreshes per cycle, expired answers,
 * and the longest wait in each cycle; then, with Clerk refusing, a page loaded alone in a new
 * browser session on the proxy that has learned meanwhile, and its longest wait in each of its
 * first two cycles. Bounded: cycles × 6 s + ~15 s per case, 12 s more for the late page.
 */
import { parseArgs } from 'node:util'
import { type EngineName, launchEngine } from '../browser/drivers/index.js'
import { counts, openTabs } from '../browser/harness.js'
import type { RefreshRecord } from '../helpers/app.js'
import { sleep } from '../helpers/time.js'
import { percentile } from './percentile.js'

const { values } = parseArgs({
  options: {
    engine: { type: 'string', default: 'chromium,firefox' },
    cycles: { type: 'string', default: '14' },
    learn: { type: 'string', default: '6' },
    hold: { type: 'string', default: '2000' },
    /** Print, per steady cycle, where a wait's time goes (ms from the old token's `exp`). */
    timeline: { type: 'boolean', default: false },
  },
})
const LIFETIME_S = 6
const CYCLES = Number(values.cycles)
/** Cycles in which the proxy learns Clerk's policy and clock (the policy, then the lead in quarter steps). */
const LEARN = Number(values.learn)
const HOLD_MS = Number(values.hold)
const pct = (list: number[], p: number) => percentile(list, p) || 0 // an empty list prints as 0

const rows: string[] = []
const cycleRows: string[] = []
const lateRows: string[] = []
for (const name of values.engine!.split(',') as EngineName[]) {
  const engine = await launchEngine(name)
  try {
    for (const policy of ['refuse', 'accept'] as const) {
      const { app, session, tabs } = await openTabs(engine, 4, {
        lifetimeSeconds: LIFETIME_S,
        latencyMs: 100,
        policy,
        proxy: { holdMs: HOLD_MS },
      })
      const started = Date.now()
      const refreshesBefore = app.clerk.stats().refreshes
      await sleep(CYCLES * LIFETIME_S * 1000)
      const all = await counts(tabs)
      const refreshes = app.clerk.stats().refreshes - refreshesBefore
      await session.close()
      // A page loaded later, alone in its browser (no tab to share a measured clock), on the
      // proxy that has learned meanwhile: its token comes from the cookie, unmeasured, and its
      // first refresh finds out that Clerk refuses (the proxy's 503, with Clerk's time).
      if (policy === 'refuse') {
        const late = await engine.newSession()
        const tab = await late.open(`${app.origin}/login?user=user_late`, 'front')
        await tab.waitFor(() => window.sessionKeeper?.getState().status === 'active', undefined, { timeoutMs: 15_000 })
        const opened = Date.now()
        await sleep(2 * LIFETIME_S * 1000)
        const [mine] = await counts([tab])
        const byCycle = [0, 1].map((i) =>
          Math.max(0, ...mine!.waits.filter((w, j) => w > 5 && Math.floor((mine!.answeredAt[j]! - opened) / (LIFETIME_S * 1000)) === i)),
        )
        lateRows.push(`| ${name} | ${byCycle.map((w) => w.toFixed(0)).join(' · ')} ms | ${mine!.expired} |`)
        await late.close()
      }
      await app.close()
      const learnedAt = started + LEARN * LIFETIME_S * 1000
      const calls = all.flatMap((c) => c.waits.map((w, i) => ({ w, at: c.answeredAt[i]! })))
      const waited = calls.filter((c) => c.w > 5)
      const steady = waited
        .filter((c) => c.at >= learnedAt)
        .map((c) => c.w)
        .sort((a, b) => a - b)
      const learning = waited.filter((c) => c.at < learnedAt).map((c) => c.w)
      const perCycle = Array.from({ length: CYCLES }, (_, i) =>
        Math.max(0, ...waited.filter((c) => Math.floor((c.at - started) / (LIFETIME_S * 1000)) === i).map((c) => c.w)),
      )
      if (values.timeline && policy === 'refuse') printTimeline(name, app.requests, calls, learnedAt)
      cycleRows.push(`| ${name} | ${policy} | ${perCycle.map((w) => w.toFixed(0)).join(' · ')} |`)
      const expired = all.reduce((sum, c) => sum + c.expired, 0)
      rows.push(
        `| ${name} | ${policy} | ${HOLD_MS} | ${calls.length} | ${((100 * waited.length) / Math.max(1, calls.length)).toFixed(1)} % | ${pct(steady, 0.5).toFixed(0)} / ${pct(steady, 0.99).toFixed(0)} / ${Math.max(0, ...steady).toFixed(0)} ms (n=${steady.length}) | ${Math.max(0, ...learning).toFixed(0)} ms | ${(refreshes / CYCLES).toFixed(2)} | ${expired} |`,
      )
      console.log(rows.at(-1))
    }
  } finally {
    await engine.close()
  }
}
console.log(
  `\n${CYCLES} cycles of ${LIFETIME_S} s tokens, 4 tabs, 100 ms upstream, holdMs ${HOLD_MS}\n\n| engine | Clerk | holdMs | getToken() calls | waited | waits p50 / p99 / max, from cycle ${LEARN + 1} | longest wait, cycles 1–${LEARN} | refreshes per ${LIFETIME_S} s | expired answers |\n|---|---|---|---|---|---|---|---|---|`,
)
for (const row of rows) console.log(row)
console.log(
  `\nLongest getToken() wait in each ${LIFETIME_S} s cycle, ms (cycle 1 holds the discovery of Clerk's policy)\n\n| engine | Clerk | cycles 1–${CYCLES} |\n|---|---|---|`,
)
for (const row of cycleRows) console.log(row)
console.log(
  `\nA page loaded alone after those cycles (refuse), on the proxy that learned meanwhile: longest wait in its first two cycles\n\n| engine | cycles 1 · 2 | expired answers |\n|---|---|---|`,
)
for (const row of lateRows) console.log(row)

/**
 * `--timeline`: for each refresh after the learning cycles, in ms from the expiry of the token it
 * refreshed (the machine's one clock: browser, proxy and emulator share it), when the first call
 * that waited for it was asked, when the request reached the proxy, when the proxy answered, and
 * when the last call waiting was answered.
 */
function printTimeline(name: string, requests: RefreshRecord[], calls: { w: number; at: number }[], learnedAt: number) {
  const expOf = (raw: string) => JSON.parse(Buffer.from(raw.split('.')[1]!, 'base64url').toString()).exp * 1000
  console.log(`\n[${name}] refuse: ms from the old token's exp | first asked | at proxy | proxy answered | last answered | longest wait`)
  for (const r of requests.filter((r) => r.status === 200 && r.at >= learnedAt && r.token)) {
    const exp = expOf(r.token)
    const waits = calls.filter((c) => c.w > 5 && c.at - c.w < exp && c.at > exp - 1000 && c.at < exp + 2000)
    if (waits.length === 0) continue
    const asked = Math.min(...waits.map((c) => c.at - c.w)) - exp
    const answered = Math.max(...waits.map((c) => c.at)) - exp
    console.log(
      `| ${asked.toFixed(0)} | ${r.at - exp} | ${(r.answeredAt ?? Number.NaN) - exp} | ${answered.toFixed(0)} | ${Math.max(...waits.map((c) => c.w)).toFixed(0)} |`,
    )
  }
}
