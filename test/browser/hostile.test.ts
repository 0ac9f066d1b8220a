import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser } from 'playwright-core'
import { startApp, type App } from '../helpers/app.js'
import { launchChromium } from '../helpers/chromium.js'

let browser: Browser
let app: App
beforeAll(async () => {
  browser = await launchChromium()
  app = await startApp({ tokenLifetimeSeconds: 4, unexpiredTokens: 'accept' })
})
afterAll(async () => {
  await browser?.close()
  await app?.close()
})

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

describe('a same-origin page without the library, posting junk on the channel', () => {
  it('never becomes what getToken() answers or what a change event carries (10 runs in a row)', async () => {
    const context = await browser.newContext()
    await context.addInitScript(() => {
      const w = window as unknown as { __sids: Set<string>; __answers: Set<string> }
      w.__sids = new Set()
      w.__answers = new Set()
      addEventListener('session-keeper:change', (e) => {
        const token = (e as CustomEvent).detail.token as string | null
        if (token) w.__sids.add(JSON.parse(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))).sid)
      })
      setInterval(async () => {
        const keeper = (window as unknown as { sessionKeeper?: { getToken(): Promise<string | null> } }).sessionKeeper
        const token = await keeper?.getToken().catch(() => null)
        if (token) w.__answers.add(JSON.parse(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))).sid)
      }, 150)
    })
    const first = await context.newPage()
    await first.goto(`${app.origin}/login`)
    const tabs = [first, await context.newPage(), await context.newPage()]
    for (const tab of tabs.slice(1)) await tab.goto(app.origin)
    for (const tab of tabs)
      await tab.waitForFunction(
        () => (window as unknown as { sessionKeeper?: { getState(): { status: string } } }).sessionKeeper?.getState().status === 'active',
      )
    const real = await first.evaluate(
      () => (window as unknown as { sessionKeeper: { getState(): { sessionId: string } } }).sessionKeeper.getState().sessionId,
    )
    const junk = await context.newPage()
    await junk.goto(`${app.origin}/junk`)

    const runs: { junkAnswers: number; junkEvents: number; refreshes: number }[] = []
    for (let run = 0; run < 10; run++) {
      const before = app.clerk.stats().refreshes
      await junk.evaluate(`(${JUNK})()`)
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
      `junk runs: ${runs.length}; junk answers ${runs.map((r) => r.junkAnswers).join(',')}; junk in change events ${runs.map((r) => r.junkEvents).join(',')}; refreshes per run ${runs.map((r) => r.refreshes).join(',')}`,
    )
    expect(runs.every((r) => r.junkAnswers === 0 && r.junkEvents === 0)).toBe(true)
    expect(runs.reduce((n, r) => n + r.refreshes, 0)).toBeGreaterThanOrEqual(5) // the real session kept refreshing
    for (const tab of tabs) {
      const s = await tab.evaluate(() =>
        (window as unknown as { sessionKeeper: { getState(): { status: string; sessionId: string } } }).sessionKeeper.getState(),
      )
      expect(s).toMatchObject({ status: expect.stringMatching(/active|refreshing/), sessionId: real })
    }
    await context.close()
  })
})
