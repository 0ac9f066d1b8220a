import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startApp, type App } from '../helpers/app.js'
import { engines, useEngine } from './harness.js'

let app: App
beforeAll(async () => {
  app = await startApp({ tokenLifetimeSeconds: 4, unexpiredTokens: 'accept' }, { head: WATCH })
})
afterAll(async () => {
  await app?.close()
})

/** In every page of the library, before it: the session ids seen in change events and in getToken() answers. */
const WATCH = `
  window.__sids = new Set(); window.__answers = new Set();
  const sidOf = (token) => JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).sid;
  addEventListener('session-keeper:change', (e) => { if (e.detail.token) window.__sids.add(sidOf(e.detail.token)) });
  setInterval(async () => {
    const token = window.sessionKeeper && (await window.sessionKeeper.getToken().catch(() => null));
    if (token) window.__answers.add(sidOf(token));
  }, 150);
`

/**
 * Runs in a page of the same origin WITHOUT the library: 400 messages of every shape the agent
 * uses on its channel, many carrying unsigned tokens of sessions the proxy never saw (later
 * iat, later exp, far-future iat, long lifetimes), posted over ~3 s.
 */
const JUNK = `async () => {
  const channel = new BroadcastChannel('session-keeper:v1:/api/session/refresh|__session')
  const b64 = (o) => btoa(JSON.stringify(o)).replace(/=+$/, '').replace(/\\+/g, '-').replace(/\\//g, '_')
  const jwt = (claims) => b64({ alg: 'RS256', typ: 'JWT' }) + '.' + b64(claims) + '.c2ln'
  const now = () => Math.floor(Date.now() / 1000)
  const foreign = () => {
    const t = now(), k = Math.floor(Math.random() * 4)
    const claims = [
      { sid: 'sess_junk', sub: 'user_junk', iat: t, exp: t + 60 },
      { sid: 'sess_junk', sub: 'user_junk', iat: t + 4, exp: t + 64 },
      { sid: 'sess_junk_' + k, sub: 'user_junk', iat: t + 3600, exp: t + 7200 },
      { sid: 'sess_junk', sub: 'user_junk', iat: t - 5, exp: t + 86000 },
    ][k]
    return jwt(claims)
  }
  const shapes = [
    () => ({ type: 'token', token: foreign(), offsetMs: 0, skewKnown: true, cause: 'refresh' }),
    () => ({ type: 'token', token: foreign(), offsetMs: -3600000, offsetHighMs: -3599000, skewKnown: true, cause: 'reply' }),
    () => ({ type: 'token', token: foreign(), offsetMs: 1e12, skewKnown: false, cause: 'set' }),
    () => ({ type: 'hello' }),
    () => ({ type: 'refreshing', sessionId: 'sess_junk' }),
    () => ({ type: 'refresh-failed', sessionId: 'sess_junk', code: 'refresh_rejected', message: 'junk', attempt: 3, retryAt: Date.now() + 1e9 }),
    () => ({ type: 'recovery', sessionId: 'sess_junk', token: foreign(), reason: 'junk' }),
    () => ({ type: 'signed-out', sessionId: 'sess_junk', rejected: true }),
    () => ({ type: 'signed-out', sessionId: null, rejected: true }),
    () => ({ type: 'lock', op: 'release', name: 'junk', ticket: 1 }),
    () => ({ type: 'token', token: 'not-a-jwt', offsetMs: 0, skewKnown: true, cause: 'refresh' }),
    () => 'garbage',
  ]
  for (let i = 0; i < 400; i++) {
    const message = shapes[i % shapes.length]()
    channel.postMessage(typeof message === 'string' ? message : { v: 1, from: 'junk-' + (i % 7), ...message })
    if (i % 20 === 19) await new Promise((r) => setTimeout(r, 150))
  }
  channel.close()
}`

describe.each(engines)('[%s] a same-origin page without the library, posting junk on the channel', (name) => {
  const browser = useEngine(name)

  it('never becomes what getToken() answers or what a change event carries (10 runs in a row)', async () => {
    const session = await browser.engine.newSession()
    try {
      const tabs = [
        await session.open(`${app.origin}/login`, 'front'),
        await session.open(app.origin, 'back'),
        await session.open(app.origin, 'back'),
      ]
      for (const tab of tabs) await tab.waitFor(() => window.sessionKeeper?.getState().status === 'active')
      const real = await tabs[0]!.evaluate(() => window.sessionKeeper!.getState().sessionId)
      // In a window of its own, visible: a hidden tab's timers would stretch its ~3 s of posting.
      const junk = await session.open(`${app.origin}/junk`, 'window')

      const runs: { junkAnswers: number; junkEvents: number; refreshes: number }[] = []
      for (let run = 0; run < 10; run++) {
        const before = app.clerk.stats().refreshes
        await junk.evaluate((source) => new Function(`return (${source})()`)(), JUNK) // the page's own script, as text
        const seen = await Promise.all(
          tabs.map((t) =>
            t.evaluate(() => {
              const w = window as unknown as { __sids: Set<string>; __answers: Set<string> }
              return { answers: [...w.__answers], events: [...w.__sids] }
            }),
          ),
        )
        runs.push({
          junkAnswers: seen.flatMap((s) => s.answers).filter((sid) => sid !== real).length,
          junkEvents: seen.flatMap((s) => s.events).filter((sid) => sid !== real).length,
          refreshes: app.clerk.stats().refreshes - before,
        })
      }
      console.log(
        `[${name}] junk runs: ${runs.length}; junk answers ${runs.map((r) => r.junkAnswers).join(',')}; junk in change events ${runs.map((r) => r.junkEvents).join(',')}; refreshes per run ${runs.map((r) => r.refreshes).join(',')}`,
      )
      expect(runs.every((r) => r.junkAnswers === 0 && r.junkEvents === 0)).toBe(true)
      expect(runs.reduce((n, r) => n + r.refreshes, 0)).toBeGreaterThanOrEqual(5) // the real session kept refreshing
      for (const tab of tabs) {
        const s = await tab.evaluate(() => window.sessionKeeper!.getState())
        expect(s).toMatchObject({ status: expect.stringMatching(/active|refreshing/), sessionId: real })
      }
    } finally {
      await session.close()
    }
  })
})
