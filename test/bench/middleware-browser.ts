/**
 * npm run bench:middleware:browser [-- --minutes 3] — session-keeper against Clerk's middleware
 * alone, in real Chromium (Debian's, through test/browser/drivers/chromium.ts): an Express 5 app
 * with `@clerk/express` `clerkMiddleware()` (test/helpers/clerk-app.ts), the emulator as Clerk
 * (production instance, its Frontend API at `/__clerk`), one browser profile signed in through
 * Clerk's hosted sign-in and the middleware's handshake, three tabs (one in front, two hidden
 * behind it) each sending `GET` and `POST /api/me` every 2 s with `fetch`, 20 s tokens. Both
 * early-refresh policies, (a) with the `<script>` build on the page (`data-on-recovery="reload"`)
 * and (b) without it: cookies only, Clerk's middleware refreshes by itself.
 *
 * Real time: `--minutes` per run (default 3), four runs. Prints a markdown table. Run it alone
 * on the machine (`flock /tmp/browser.lock` in this repository): it starts a browser.
 */
import { parseArgs } from 'node:util'
import { launchChromiumEngine } from '../browser/drivers/chromium.js'
import type { Tab } from '../browser/drivers/types.js'
import type { ClerkEmulatorOptions } from '../../src/testing/index.js'
import { startClerkApp } from '../helpers/clerk-app.js'

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '3' } } })
const MINUTES = Number(values.minutes)
if (!(MINUTES > 0 && MINUTES <= 60)) throw new Error('--minutes: a number of minutes, at most 60')
const RUN_MS = MINUTES * 60_000
const LIFETIME_S = 20
const TABS = 3
const PERIOD_MS = 2_000
const CONSUMED = 'session_refresh_expired_session_token_consumed'

type Policy = NonNullable<ClerkEmulatorOptions['unexpiredTokens']>
type Mode = 'session-keeper' | 'cookies only'

interface Row {
  policy: Policy
  mode: Mode
  calls: number
  signedIn: number
  unauthorized: number
  redirected: number
  handshakes: number
  middlewareRefreshes: number
  proxyRefreshes: number
  consumed: number
  proxyAnswers: Record<number, number>
  pageLoads: number
  /** Calls each tab made (the hidden ones at their throttled pace). */
  perTab: number[]
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Every 2 s, a GET and a POST to the app's own API, as any page of the app would (cookies only). */
const startCalls = (tab: Tab) =>
  tab.evaluate((periodMs) => {
    const w = window as unknown as { __calls: number; __callTimer: number }
    w.__calls = 0
    w.__callTimer = window.setInterval(() => {
      for (const method of ['GET', 'POST']) {
        w.__calls++
        void fetch('/api/me', { method }).catch(() => {})
      }
    }, periodMs)
  }, PERIOD_MS)
const stopCalls = (tab: Tab) =>
  tab.evaluate(() => {
    const w = window as unknown as { __calls: number; __callTimer: number }
    clearInterval(w.__callTimer)
    return w.__calls
  })

async function run(engine: Awaited<ReturnType<typeof launchChromiumEngine>>, policy: Policy, mode: Mode): Promise<Row> {
  const app = await startClerkApp({
    instanceType: 'production',
    emulator: { tokenLifetimeSeconds: LIFETIME_S, unexpiredTokens: policy, secureCookies: false },
    page: { script: mode === 'session-keeper', dataset: { onRecovery: 'reload' } },
  })
  const session = await engine.newSession()
  try {
    const home = `${app.origin}/`
    const tabs = [await session.open(`${app.origin}/__clerk/sign-in?redirect_url=${encodeURIComponent(home)}&user_id=user_bench`, 'front')]
    for (let i = 1; i < TABS; i++) tabs.push(await session.open(home, 'back'))
    for (const tab of tabs) await tab.waitFor(() => document.body.textContent?.includes('signed in'), undefined, { what: 'signed in' })
    if (app.clerk.stats().handshakes !== 1) throw new Error(`the sign-in took ${app.clerk.stats().handshakes} handshakes`)
    const since = Date.now()
    const handshakesBefore = app.clerk.stats().handshakes
    const refreshesBefore = app.refreshCalls()
    for (const tab of tabs) await startCalls(tab)
    await sleep(RUN_MS)
    const perTab = await Promise.all(tabs.map(stopCalls))
    await sleep(1_000) // the last answers
    const hits = app.traffic.filter((h) => h.at >= since)
    const calls = hits.filter((h) => h.path === '/api/me')
    const proxy = hits.filter((h) => h.path === '/api/session/refresh')
    const ok = (list: readonly { status: number }[]) => list.filter((r) => r.status === 200).length
    const refreshes = app.refreshCalls()
    const row: Row = {
      policy,
      mode,
      calls: calls.length,
      signedIn: calls.filter((h) => h.status === 200).length,
      unauthorized: calls.filter((h) => h.status === 401).length,
      redirected: calls.filter((h) => h.status >= 300 && h.status < 400).length,
      handshakes: app.clerk.stats().handshakes - handshakesBefore,
      middlewareRefreshes: ok(refreshes.middleware) - ok(refreshesBefore.middleware),
      proxyRefreshes: ok(refreshes.proxy) - ok(refreshesBefore.proxy),
      consumed: app.clerk.stats().byCode[CONSUMED] ?? 0,
      proxyAnswers: {},
      pageLoads: hits.filter((h) => h.method === 'GET' && h.path === '/' && h.status === 200).length,
      perTab,
    }
    for (const answer of proxy) row.proxyAnswers[answer.status] = (row.proxyAnswers[answer.status] ?? 0) + 1
    console.error(`[${policy}] [${mode}] ${JSON.stringify(row)}`)
    return row
  } finally {
    await session.close()
    await app.close()
  }
}

const engine = await launchChromiumEngine()
const rows: Row[] = []
try {
  for (const policy of ['refuse', 'accept'] as const)
    for (const mode of ['session-keeper', 'cookies only'] as const) rows.push(await run(engine, policy, mode))
} finally {
  await engine.close()
}

const answers = (r: Row) =>
  Object.entries(r.proxyAnswers)
    .map(([status, n]) => `${n}×${status}`)
    .join(', ') || '—'
console.log(
  `\n${engine.version}: ${TABS} tabs (1 in front, 2 hidden) × (GET + POST /api/me) every ${PERIOD_MS / 1000} s, ${LIFETIME_S} s tokens, ${MINUTES} min per run\n`,
)
console.log(
  '| Clerk early refresh | on the page | calls | signed in | 401 | redirect (handshake) | handshakes | refreshes at Clerk (middleware / proxy) | `…_consumed` | proxy answers | page loads |',
)
console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|')
for (const r of rows) {
  console.log(
    `| ${r.policy} | ${r.mode} | ${r.calls} | ${r.signedIn} | ${r.unauthorized} | ${r.redirected} | ${r.handshakes} | ${r.middlewareRefreshes} / ${r.proxyRefreshes} | ${r.consumed} | ${answers(r)} | ${r.pageLoads} |`,
  )
}
