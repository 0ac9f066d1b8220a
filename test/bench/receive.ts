/**
 * npx tsx test/bench/receive.ts [--engine chromium,firefox] [--tabs 10] [--seconds 30] [--cookie-events on|off] [--latency 0]
 *   [--probe [--probe-delay 0]] [--proxy-cookies on|off] [--raw-work 0]
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
 * in Firefox and WebKit): the A/B of what the cookie change costs the propagation. Per token
 * message received by every tab: its delivery to the last tab and the end of that tab's handling;
 * the refreshing tab's own work after its post; with `--probe`, a bare number posted on a channel
 * of its own right after each token, whose delivery to the last tab is a raw fan-out at that very
 * moment (the answer and its cookies going through the browser). `--latency` sets the emulator's
 * per-call latency (0 by default); `--probe-delay` posts the probe that long after the token (how
 * long the slow fan-out lasts); `--proxy-cookies off` answers without `Set-Cookie`; `--raw-work`
 * keeps each tab of the raw fan-out busy that long per message (what per-tab work costs the last
 * tab, with nothing of the agent involved). Bounded: `--seconds` plus start-up, per engine.
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
    /** The emulator's latency per call (ms). */
    latency: { type: 'string', default: '0' },
    /** With each refreshed token, the refreshing tab posts a bare number on a channel of its own. */
    probe: { type: 'boolean', default: false },
    /** With `--probe`: post it this long after the token instead of right after (ms). */
    'probe-delay': { type: 'string', default: '0' },
    /** `off`: the proxy answers without `Set-Cookie` (an A/B of what the cookie change costs). */
    'proxy-cookies': { type: 'string', default: 'on' },
    /** The raw fan-out's listeners each keep their tab busy this long (ms): what per-tab work costs the last tab. */
    'raw-work': { type: 'string', default: '0' },
  },
})
const COOKIE_EVENTS = values['cookie-events'] !== 'off'
const PROBE = values.probe === true
const PROBE_DELAY = Number(values['probe-delay'])

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
        window.__handled.push({ ms: end - start, lagMs: performance.timeOrigin + start - data.__sentAt, sentAt: data.__sentAt });
    }, options);
  };
  window.__probe = [];
  const probe = new BroadcastChannel('receive-probe');
  probe.onmessage = (e) => window.__probe.push({ sentAt: e.data.token, lagMs: performance.timeOrigin + performance.now() - e.data.at });
  const post = BroadcastChannel.prototype.postMessage;
  BroadcastChannel.prototype.postMessage = function (message) {
    if (message && message.type === 'token') message.__sentAt = performance.timeOrigin + performance.now();
    const result = post.call(this, message);
    if (message && message.type === 'token' && message.cause === 'refresh') {
      const sendProbe = () => post.call(probe, { token: message.__sentAt, at: performance.timeOrigin + performance.now() });
      if (${PROBE}) ${PROBE_DELAY} > 0 ? setTimeout(sendProbe, ${PROBE_DELAY}) : sendProbe();
      const at = performance.now(); const mc = new MessageChannel();
      mc.port1.onmessage = () => { (window.__leaderBusy = window.__leaderBusy || []).push(performance.now() - at); mc.port1.close(); };
      mc.port2.postMessage(0);
    }
    return result;
  };
`

interface Handled {
  ms: number
  lagMs: number
  sentAt: number
}
const f = (ms: number) => ms.toFixed(2)

const rows: string[] = []
for (const name of values.engine!.split(',') as EngineName[]) {
  // No proxy rate limit: with 4 s tokens a long run passes its 20 calls per session and minute.
  const proxyOptions = { rateLimit: false as const, ...(values['proxy-cookies'] === 'off' ? { cookies: false as const } : {}) }
  const app = await startApp({ tokenLifetimeSeconds: 4, unexpiredTokens: 'accept' }, { head: HEAD }, proxyOptions)
  if (Number(values.latency) > 0) app.clerk.setFaults({ latencyMs: Number(values.latency) })
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
          return {
            handled: w.__handled,
            kinds: w.__kinds,
            cookie: w.__cookieHandled,
            adopted: w.__adopted,
            probe: (w as unknown as { __probe: { sentAt: number; lagMs: number }[] }).__probe,
            busy: (w as unknown as { __leaderBusy?: number[] }).__leaderBusy ?? [],
          }
        }),
      ),
    )
    const raw = await rawFanout(pages, Number(values['raw-work']))
    await session.close()
    const handled = reports.flatMap((r) => r.handled)
    const ms = handled.map((h) => h.ms)
    const lag = handled.map((h) => h.lagMs)
    const cookie = reports.flatMap((r) => r.cookie)
    // Per message received by every other tab: its delivery to the last tab, and the end of the
    // last tab's handling (both from the post): the fan-out itself against what the tabs add.
    const byMessage = new Map<number, Handled[]>()
    for (const h of handled) byMessage.set(h.sentAt, [...(byMessage.get(h.sentAt) ?? []), h])
    const whole = [...byMessage.values()].filter((list) => list.length === pages.length - 1)
    const lastDelivered = whole.map((list) => Math.max(...list.map((h) => h.lagMs)))
    // The refreshing tab's own work after its post (to the end of its task), and, with `--probe`,
    // a bare number posted right after each token: its delivery to the last tab is the fan-out
    // at that moment, with a refresh's answer and its cookies going through the browser.
    const busy = reports.flatMap((r) => r.busy)
    const probes = reports.flatMap((r) => r.probe)
    const lastProbe = whole.map((list) => Math.max(...probes.filter((p) => p.sentAt === list[0]!.sentAt).map((p) => p.lagMs)))
    if (PROBE)
      console.log(
        `[${name}] per token, ms: the token's last delivery / the probe's: ${lastDelivered.map((ms, i) => `${f(ms)}/${f(lastProbe[i]!)}`).join(' ')}`,
      )
    const probeCell = PROBE ? `${f(percentile(lastProbe, 0.5))} ms` : '—'
    const lastHandled = whole.map((list) => Math.max(...list.map((h) => h.lagMs + h.ms)))
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
      `| ${name} | ${pages.length} | ${COOKIE_EVENTS ? 'on' : 'off'} | ${handled.length} | ${f(percentile(ms, 0.5))} / ${f(percentile(ms, 0.9))} / ${f(Math.max(...ms))} ms | ${f(percentile(lag, 0.5))} / ${f(percentile(lag, 0.9))} ms | ${f(percentile(lastDelivered, 0.5))} / ${f(percentile(lastHandled, 0.5))} ms (n=${whole.length}) | ${probeCell} | ${f(percentile(busy, 0.5))} ms | ${cookieCell} | ${f(percentile(propagation, 0.5))} / ${f(percentile(propagation, 0.9))} ms (n=${propagation.length}) | ${f(percentile(raw, 0.5))} ms | ${ratio.toFixed(2)} | ${JSON.stringify(kinds)} |`,
    )
    console.log(rows.at(-1))
  } finally {
    await engine.close()
    await app.close()
  }
}
console.log(
  `\n| engine | tabs | cookie events | refreshed tokens received | handling p50 / p90 / max | post → listener p50 / p90 | post → last tab's listener, → its end, p50 | a bare probe posted with it, → last tab, p50 | refreshing tab busy after its post, p50 | cookie changes handled: p50 / p90 | propagation p50 / p90 | raw fan-out p50 | ÷ | messages received, by kind |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|`,
)
for (const row of rows) console.log(row)
