/**
 * npm run bench:middleware — session-keeper against Clerk's middleware alone, in Node: a real
 * Express 5 app with `@clerk/express` `clerkMiddleware()` (test/helpers/clerk-app.ts), the
 * emulator's Frontend and Backend API, one browser signed in through Clerk's hosted sign-in and
 * its handshake, and three "tabs" that each send a GET and a POST to `/api/me` every 2 s
 * (`fetch`es: never eligible for a handshake). 20 s tokens, both early-refresh policies, both
 * instance types, (a) with a session-keeper-like refresher (it calls the proxy as the agent
 * does: `refreshMarginMs` before expiry, or at expiry once told `not_yet_expired`; the proxy's
 * Set-Cookie is adopted) and (b) with cookies only (Clerk's middleware refreshes by itself).
 *
 * Each also with the machine asleep for 60 s from 90 s on: at wake, every tab and the refresher
 * fire at the same instant with a token long expired, the race of the middleware's own refresh.
 *
 * Time is simulated: `Date.now` jumps from one event to the next (real time still passes inside
 * each request), so a 3-minute run takes seconds. Bounded: `BENCH_SECONDS` (default 180) per run.
 */
import type { ClerkEmulatorOptions, InstanceType } from '../../src/testing/index.js'
import { type Browser, shiftableClock, startClerkApp } from '../helpers/clerk-app.js'

const SIMULATED_MS = Number(process.env.BENCH_SECONDS ?? 180) * 1000
const LIFETIME_MS = 20_000
const TABS = 3
const PERIOD_MS = 2_000
/** The agent's default margin for 20 s tokens: max(15 s, 25 %), at most half the lifetime. */
const MARGIN_MS = Math.min(Math.max(15_000, LIFETIME_MS / 4), LIFETIME_MS / 2)
/** The agent's `AT_EXPIRY_GRACE_MS`. */
const AT_EXPIRY_GRACE_MS = 50
const CONSUMED = 'session_refresh_expired_session_token_consumed'
const SLEEP = { fromMs: 90_000, toMs: 150_000 }

type Policy = NonNullable<ClerkEmulatorOptions['unexpiredTokens']>
type Mode = 'session-keeper' | 'cookies only'

interface Row {
  instanceType: InstanceType
  policy: Policy
  mode: Mode
  sleeps: boolean
  calls: number
  signedIn: number
  unauthorized: number
  redirected: number
  handshakes: number
  clerkRefreshesMiddleware: number
  clerkRefreshesProxy: number
  consumed: number
  proxyAnswers: Record<number, number>
}

/** What session-keeper's agent does with the proxy, reduced to its schedule (one agent for all tabs). */
function createRefresher(browser: Browser, row: Row) {
  let atExpiry = false
  let recoveryFor: string | null = null
  let signedOut = false
  let retryAt = 0
  return {
    /** A machine asleep runs no timer: a refresh due now runs at `ms` at the earliest. */
    notBefore(ms: number): void {
      retryAt = Math.max(retryAt, ms)
    },
    /** When the next refresh is due, from the token in the cookie (as the agent re-reads it). */
    dueAt(): number {
      const token = browser.session()
      if (!token || signedOut || token.raw === recoveryFor) return Number.POSITIVE_INFINITY
      const expiresAt = token.exp * 1000
      return Math.max(retryAt, atExpiry ? expiresAt + AT_EXPIRY_GRACE_MS : expiresAt - MARGIN_MS)
    },
    async run(): Promise<void> {
      const token = browser.session()!
      const answer = await browser.refresh(token.raw)
      row.proxyAnswers[answer.status] = (row.proxyAnswers[answer.status] ?? 0) + 1
      if (answer.status === 200) return
      if (answer.status === 503 && answer.body.error?.code === 'not_yet_expired') atExpiry = true
      else if (answer.status === 409) recoveryFor = token.raw
      else if (answer.status === 401) signedOut = true
      else retryAt = Date.now() + 1_000
    },
  }
}

async function run(instanceType: InstanceType, policy: Policy, mode: Mode, sleeps: boolean): Promise<Row> {
  const clock = shiftableClock()
  const app = await startClerkApp({ instanceType, emulator: { tokenLifetimeSeconds: LIFETIME_MS / 1000, unexpiredTokens: policy } })
  const row: Row = {
    instanceType,
    policy,
    mode,
    sleeps,
    calls: 0,
    signedIn: 0,
    unauthorized: 0,
    redirected: 0,
    handshakes: 0,
    clerkRefreshesMiddleware: 0,
    clerkRefreshesProxy: 0,
    consumed: 0,
    proxyAnswers: {},
  }
  try {
    const browser = app.browser()
    const signIn = await browser.signIn()
    if (!signIn.body.includes('signed in')) throw new Error(`the sign-in failed: ${signIn.body}`)
    app.clerk.resetStats()
    const refresher = mode === 'session-keeper' ? createRefresher(browser, row) : null
    const start = Date.now()
    const phase = Array.from({ length: TABS }, (_, tab) => Math.round((tab * PERIOD_MS) / TABS))
    const tabAt = phase.map((p) => start + p)
    /** The tab's next tick on its own grid after `now`. */
    const nextTick = (tab: number, now: number) =>
      start + phase[tab]! + (Math.floor((now - start - phase[tab]!) / PERIOD_MS) + 1) * PERIOD_MS
    const asleep = (t: number) => sleeps && t >= start + SLEEP.fromMs && t < start + SLEEP.toMs
    const call = async (method: 'GET' | 'POST') => {
      const answer = await browser.api(method)
      row.calls++
      if (answer.status === 200) row.signedIn++
      else if (answer.status === 401) row.unauthorized++
      else if (answer.status >= 300 && answer.status < 400) row.redirected++
    }
    // One event at a time, in time order; what falls on the same instant runs concurrently.
    for (let step = 0; step < 100_000; step++) {
      // Asleep: nothing runs; at wake, whatever was due runs at once.
      for (let tab = 0; tab < TABS; tab++) if (asleep(tabAt[tab]!)) tabAt[tab] = start + SLEEP.toMs
      if (refresher && asleep(refresher.dueAt())) refresher.notBefore(start + SLEEP.toMs)
      const next = Math.min(...tabAt, refresher?.dueAt() ?? Number.POSITIVE_INFINITY)
      if (next > start + SIMULATED_MS) break
      if (next > Date.now()) clock.advance(next - Date.now())
      const now = Date.now()
      const work: Promise<void>[] = []
      if (refresher && refresher.dueAt() <= now) work.push(refresher.run())
      for (let tab = 0; tab < TABS; tab++) {
        if (tabAt[tab]! > now) continue
        tabAt[tab] = nextTick(tab, now)
        work.push(call('GET'), call('POST'))
      }
      await Promise.all(work)
    }
    const stats = app.clerk.stats()
    const calls = app.refreshCalls()
    row.handshakes = stats.handshakes
    row.clerkRefreshesMiddleware = calls.middleware.filter((r) => r.status === 200).length
    row.clerkRefreshesProxy = calls.proxy.filter((r) => r.status === 200).length
    row.consumed = stats.byCode[CONSUMED] ?? 0
    return row
  } finally {
    await app.close()
    clock.restore()
  }
}

const rows: Row[] = []
for (const instanceType of ['production', 'development'] as const)
  for (const policy of ['refuse', 'accept'] as const)
    for (const sleeps of [false, true])
      for (const mode of ['session-keeper', 'cookies only'] as const) rows.push(await run(instanceType, policy, mode, sleeps))

const answers = (r: Row) =>
  Object.entries(r.proxyAnswers)
    .map(([status, n]) => `${n}×${status}`)
    .join(', ') || '—'
console.log(
  `\n${TABS} tabs × (GET + POST /api/me) every ${PERIOD_MS / 1000} s, ${LIFETIME_MS / 1000} s tokens, ${SIMULATED_MS / 1000} s simulated per run\n`,
)
console.log(
  '| instance | Clerk early refresh | 60 s sleep | refresher | calls | signed in | 401 | redirect | handshakes | refreshes at Clerk (middleware / proxy) | `…_consumed` | proxy answers |',
)
console.log('|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|')
for (const r of rows) {
  console.log(
    `| ${r.instanceType} | ${r.policy} | ${r.sleeps ? 'yes' : 'no'} | ${r.mode} | ${r.calls} | ${r.signedIn} | ${r.unauthorized} | ${r.redirected} | ${r.handshakes} | ${r.clerkRefreshesMiddleware} / ${r.clerkRefreshesProxy} | ${r.consumed} | ${answers(r)} |`,
  )
}
