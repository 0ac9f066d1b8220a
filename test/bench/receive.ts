/**
 * npx tsx test/bench/receive.ts [--engine chromium,firefox] [--tabs 10] [--seconds 30] [--cookie-events on|off]
 * — where a receiving tab's time goes (issue 19's propagation goal): the built `<script>` bundle
 * in 1 front and N − 1 hidden tabs, 4 s tokens, Clerk accepting early refreshes. Every channel
 * listener, and every Cookie Store `change` listener, is wrapped in each page: how long the
 * agent's handling of a `token` message takes (decoding, checks, the transition, the public
 * state, the change event and its listeners), how long the message took from the sender's
 * `postMessage` to the listener (cross-process, one clock), how long the agent's handling of the
 * cookie change that the same refresh causes takes, and how many messages of each kind a tab
 * received. Then the propagation (the refreshing tab holding the token to the last tab holding
 * it) against a raw BroadcastChannel fan-out, as `npm run bench` measures both. `--cookie-events
 * off` hides the Cookie Store API's `change` from the agent (it then polls `document.cookie`, as
 * in Firefox and WebKit): the A/B of what the cookie change costs the propagation. Bounded:
 * `--seconds` plus start-up, per engine.
 */
import { parseArgs } from 'node:util'
import { type EngineName, launchEngine } from '../browser/drivers/index.js'
import { startApp } from '../helpers/app.js'
import { type Adopted, propagationTimes, RECORD_ADOPTED, rawFanout } from './fanout.js'
import { percentile } from './percentile.js'

const { values } = parseArgs({
  options: {
    engine: { type: 'string', default: 'chromium,firefox' },
    tabs: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '30' },
    'cookie-events': { type: 'string', default: 'on' },
  },
})
const COOKIE_EVENTS = values['cookie-events'] !== 'off'

const HEAD = `
  window.__handled = []; window.__kinds = {}; window.__cookieHandled = [];
  ${RECORD_ADOPTED}
  if (window.cookieStore) {
    const addCookie = window.cookieStore.addEventListener.bind(window.cookieStore);
    window.cookieStore.addEventListener = function (type, listener, options) {
      if (type !== 'change') return addCookie(type, listener, options);
      if (!${COOKIE_EVENTS}) return;
      return addCookie(type, function (event) {
        const start = performance.now();
        listener.call(this, event);
        window.__cookieHandled.push(performance.now() - start);
      }, options);
    };
  }
  const add = BroadcastChannel.prototype.addEventListener;
  BroadcastChannel.prototype.addEventListener = function (type, listener, options) {
    if (type !== 'message') return add.call(this, type, listener, options);
    return add.call(this, type, function (event) {
      const start = performance.now();
      listener.call(this, event);
      const end = performance.now();
      const data = event.data || {};
      const kind = data.type + (data.cause ? ':' + data.cause : '') + (data.code ? ':' + data.code + ':' + String(data.message).slice(0, 80) : '');
      window.__kinds[kind] = (window.__kinds[kind] || 0) + 1;
      if (data.type === 'token' && data.cause === 'refresh')
        window.__handled.push({ ms: end - start, lagMs: performance.timeOrigin + start - data.__sentAt });
    }, options);
  };
  const post = BroadcastChannel.prototype.postMessage;
  BroadcastChannel.prototype.postMessage = function (message) {
    if (message && message.type === 'token') message.__sentAt = performance.timeOrigin + performance.now();
    return post.call(this, message);
  };
`

interface Handled {
  ms: number
  lagMs: number
}
const f = (ms: number) => ms.toFixed(2)

const rows: string[] = []
for (const name of values.engine!.split(',') as EngineName[]) {
  // No proxy rate limit: with 4 s tokens a long run passes its 20 calls per session and minute.
  const app = await startApp({ tokenLifetimeSeconds: 4, unexpiredTokens: 'accept' }, { head: HEAD }, { rateLimit: false })
  const engine = await launchEngine(name)
  try {
    const session = await engine.newSession()
    const pages = [await session.open(`${app.origin}/login`, 'front')]
    for (let i = 1; i < Number(values.tabs); i++) pages.push(await session.open(app.origin, 'back'))
    await new Promise((resolve) => setTimeout(resolve, Number(values.seconds) * 1000))
    const reports = await Promise.all(
      pages.map((page) =>
        page.evaluate(() => {
          const w = window as unknown as {
            __handled: Handled[]
            __kinds: Record<string, number>
            __cookieHandled: number[]
            __adopted: Adopted[]
          }
          return { handled: w.__handled, kinds: w.__kinds, cookie: w.__cookieHandled, adopted: w.__adopted }
        }),
      ),
    )
    const raw = await rawFanout(pages)
    await session.close()
    const handled = reports.flatMap((r) => r.handled)
    const ms = handled.map((h) => h.ms)
    const lag = handled.map((h) => h.lagMs)
    const cookie = reports.flatMap((r) => r.cookie)
    // From the second token on: the first ones are the tabs' start-up.
    const firstIat = Math.min(...reports[0]!.adopted.map((a) => a.iat))
    const propagation = propagationTimes(
      reports.map((r) => r.adopted),
      pages.length,
      firstIat,
    )
    const ratio = percentile(propagation, 0.5) / percentile(raw, 0.5)
    // Every proxy answer that was not a 200, by status and code (a refresh that failed moves the tabs' figures).
    const failed = app.requests.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.code ?? ''}`.trim())
    if (failed.length) console.log(`[${name}] proxy answers other than 200: ${JSON.stringify(failed)}`)
    const kinds: Record<string, number> = {}
    for (const r of reports) for (const [kind, n] of Object.entries(r.kinds)) kinds[kind] = (kinds[kind] ?? 0) + n
    const cookieCell = cookie.length ? `${cookie.length}: ${f(percentile(cookie, 0.5))} / ${f(percentile(cookie, 0.9))} ms` : '—'
    rows.push(
      `| ${name} | ${pages.length} | ${COOKIE_EVENTS ? 'on' : 'off'} | ${handled.length} | ${f(percentile(ms, 0.5))} / ${f(percentile(ms, 0.9))} / ${f(Math.max(...ms))} ms | ${f(percentile(lag, 0.5))} / ${f(percentile(lag, 0.9))} ms | ${cookieCell} | ${f(percentile(propagation, 0.5))} / ${f(percentile(propagation, 0.9))} ms (n=${propagation.length}) | ${f(percentile(raw, 0.5))} ms | ${ratio.toFixed(2)} | ${JSON.stringify(kinds)} |`,
    )
    console.log(rows.at(-1))
  } finally {
    await engine.close()
    await app.close()
  }
}
console.log(
  `\n| engine | tabs | cookie events | refreshed tokens received | handling p50 / p90 / max | post → listener p50 / p90 | cookie changes handled: p50 / p90 | propagation p50 / p90 | raw fan-out p50 | ÷ | messages received, by kind |\n|---|---|---|---|---|---|---|---|---|---|---|`,
)
for (const row of rows) console.log(row)
