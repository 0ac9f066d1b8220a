import { afterEach, describe, expect, it } from 'vitest'
import { type ClerkApp, type Hit, startClerkApp } from '../helpers/clerk-app.js'
import { RECORDER } from '../helpers/sampler.js'
import type { Session, Tab } from './drivers/index.js'
import { closeAll, engines, type Policy, sleep, state, useEngine } from './harness.js'

/**
 * Real browsers inside a Clerk app: Express 5 with Clerk's own `clerkMiddleware()` in front of
 * the page and of `/api/me`, the emulator as Clerk (its Frontend API at `/__clerk`), the proxy,
 * and the `<script>` build on the page with `data-on-recovery="reload"`. Tabs sign in through
 * Clerk's hosted sign-in and the middleware's handshake, as users do.
 */
const LIFETIME_S = 4
const CONSUMED = 'session_refresh_expired_session_token_consumed'

/** Polls `check` (Node side) every 50 ms; throws with `what` after `timeoutMs`. */
async function until<T>(check: () => T | undefined | null | false, timeoutMs: number, what: string): Promise<T> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(50)) {
    const value = check()
    if (value) return value
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

/**
 * Page script: the status of each of the tab's refresh requests, kept in its sessionStorage
 * (statuses only, no token), so that a tab's record survives its reload.
 */
const REFRESH_LOG = `{
  const f = window.fetch
  window.fetch = function (input, init) {
    const answer = f.call(this, input, init)
    if (String(input instanceof Request ? input.url : input).includes('/api/session/refresh')) {
      answer.then((r) => {
        const log = JSON.parse(sessionStorage.getItem('__refreshes') || '[]')
        log.push(r.status)
        sessionStorage.setItem('__refreshes', JSON.stringify(log))
      }, () => {})
    }
    return answer
  }
}`
const refreshLog = (tab: Tab) => tab.evaluate(() => JSON.parse(sessionStorage.getItem('__refreshes') ?? '[]') as number[])

const isRefresh = (h: Hit) => h.path === '/api/session/refresh'
const isHandshake = (h: Hit) => h.status === 307 && (h.location ?? '').includes('/v1/client/handshake')
const pageErrors = (tab: Tab) => tab.evaluate(() => (window as unknown as { __pageErrors: string[] }).__pageErrors)

describe.each(engines)("[%s] inside a Clerk app (Clerk's own middleware in front)", (name) => {
  const browser = useEngine(name)
  let app: ClerkApp | undefined
  let session: Session | undefined
  afterEach(async () => {
    await closeAll(session, app)
    session = app = undefined
  })

  /** The app, and `count` tabs of one browser: the first signs in on Clerk's hosted page, the others open behind it. */
  async function signedInTabs(count: number, policy: Policy): Promise<{ app: ClerkApp; tabs: Tab[] }> {
    const started = await startClerkApp({
      instanceType: 'production',
      emulator: { tokenLifetimeSeconds: LIFETIME_S, unexpiredTokens: policy, secureCookies: false },
      page: { head: RECORDER + REFRESH_LOG, dataset: { onRecovery: 'reload' } },
    })
    app = started
    session = await browser.engine.newSession()
    const home = `${started.origin}/`
    const tabs = [
      await session.open(`${started.origin}/__clerk/sign-in?redirect_url=${encodeURIComponent(home)}&user_id=user_browser`, 'front'),
    ]
    for (let i = 1; i < count; i++) tabs.push(await session.open(home, 'back'))
    const active = () => window.sessionKeeper?.getState().status === 'active'
    await Promise.all(tabs.map((tab) => tab.waitFor(active, undefined, { timeoutMs: 15_000, what: 'an active session' })))
    expect(started.clerk.stats().byHandshakeReason).toEqual({ 'client-uat-but-no-session-token': 1 }) // the sign-in's
    return { app: started, tabs }
  }

  describe.each(['accept', 'refuse'] as const)('with a Clerk that %ss early refreshes', (policy) => {
    it('recovery: the refresh cookie unknown to Clerk (409), the page reloads, the middleware runs its handshake, every tab is active again, no handshake loop', async () => {
      const { app, tabs } = await signedInTabs(2, policy)
      const { sessionId } = await state(tabs[0]!)
      const since = Date.now()
      app.clerk.rotateRefreshToken(sessionId!) // as after another device's handshake: this browser's cookie is unknown now
      const conflict = await until(
        () => app.traffic.find((h) => isRefresh(h) && h.status === 409 && h.at >= since),
        (LIFETIME_S + 4) * 1000,
        "the proxy's 409",
      )
      const handshake = await until(
        () => app.traffic.find((h) => isHandshake(h) && h.at >= conflict.at),
        (LIFETIME_S + 10) * 1000,
        "the middleware's handshake",
      ).catch((error) => {
        console.log(
          app.traffic
            .filter((h) => h.at >= since)
            .map((h) => `${h.at - since} ${h.method} ${h.path} ${h.status} ${h.reason ?? ''}`)
            .join('\n'),
        )
        throw error
      })
      // Active again: on a token of the same session that the handshake (or a refresh after it) issued.
      const recovered = (handshakeAt: number) => {
        const s = window.sessionKeeper?.getState()
        if (!s?.token || s.status !== 'active' || s.error !== null) return null
        const iat = JSON.parse(atob(s.token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))).iat
        return iat * 1000 >= handshakeAt - 1_000 ? s.sessionId : null
      }
      const activeAt: number[] = []
      for (const tab of tabs) {
        await tab.waitFor(recovered, handshake.at, { timeoutMs: 10_000, what: 'active again after the handshake' })
        activeAt.push(Date.now())
        expect(await tab.evaluate(recovered, handshake.at)).toBe(sessionId) // a recovery keeps the session
      }
      const done = Math.max(...activeAt)
      // The new refresh cookie works: the proxy refreshes again, and nothing more is refused.
      await until(
        () => app.traffic.some((h) => isRefresh(h) && h.status === 200 && h.at > handshake.at),
        (LIFETIME_S + 4) * 1000,
        'a refresh after it',
      )
      await sleep(500)
      const after = app.traffic.filter((h) => h.at > done)
      expect(after.filter((h) => isRefresh(h) && h.status === 409)).toEqual([])
      // Clerk's redirect-loop guard never counted past one handshake in a row.
      const counts = app.traffic.map((h) => h.redirectCount).filter((c) => c !== null)
      expect(counts.length).toBeGreaterThanOrEqual(2) // the sign-in's handshake and the recovery's
      expect(Math.max(...counts)).toBeLessThanOrEqual(1)
      expect(app.clerk.stats().byHandshakeReason['session-token-expired-refresh-refresh_token_not_found']).toBe(1)
      const window409s = app.traffic.filter((h) => isRefresh(h) && h.status === 409 && h.at >= conflict.at && h.at <= handshake.at).length
      const reloads = app.traffic.filter(
        (h) => h.method === 'GET' && h.path === '/' && h.status === 200 && h.at > conflict.at && h.at <= done,
      ).length
      const refreshes = app.traffic
        .filter((h) => isRefresh(h) && h.at >= since && h.at <= done)
        .map((h) => `${h.arrivedAt - since}–${h.at - since} ${h.status}`)
      const perTab = await Promise.all(tabs.map(refreshLog))
      console.log(
        `[${name}] [${policy}] recovery: 409 → every tab active in ${done - conflict.at} ms (handshake after ${handshake.at - conflict.at} ms; ${reloads} page loads, ${window409s} × 409, handshakes in all ${app.clerk.stats().handshakes}); refreshes (ms after the rotation): ${refreshes.join(', ')}; statuses per tab: ${perTab.map((l) => l.join(' ')).join(' | ')}`,
      )
      // One reload, once it runs the handshake: a reload before would find the old token still
      // good to the middleware (5 s of skew), meet the 409 again and reload again.
      expect(reloads).toBe(1)
      // No tab asks twice for the token in recovery. One tab asks: the others hear of its 409. A
      // second tab may ask once, when it was granted the lock before that word arrived and the
      // holder's answer to its hello took longer than the handoff wait (300 ms, which bounds the
      // failover after a crash); seen once, in WebKit on CI's loaded machine.
      for (const log of perTab) expect(log.filter((status) => status === 409).length).toBeLessThanOrEqual(1)
      expect(window409s).toBeLessThanOrEqual(tabs.length)
      expect(perTab.flat().filter((status) => status === 409).length).toBe(window409s)
      for (const tab of tabs) expect(await pageErrors(tab)).toEqual([])
    })

    it("sign-out through Clerk's hosted sign-out page: every tab signs out, and no tab takes the old token back", async () => {
      const { app, tabs } = await signedInTabs(2, policy)
      const handshakes = app.clerk.stats().handshakes
      const since = Date.now()
      const home = `${app.origin}/`
      await tabs[0]!.goto(`${app.origin}/__clerk/sign-out?redirect_url=${encodeURIComponent(home)}`)
      // Back on the page: signed out for Clerk's middleware, and for the agent.
      expect(await tabs[0]!.evaluate(() => document.body.textContent)).toContain('signed out')
      const signedOut = () => {
        const s = window.sessionKeeper?.getState()
        return s?.status === 'signedOut' && s.token === null
      }
      await tabs[0]!.waitFor(signedOut, undefined, { timeoutMs: 5_000, what: 'signed out' })
      // The other tab holds a token that is still valid: its next refresh hears from Clerk that the session is over.
      await tabs[1]!.waitFor(signedOut, undefined, { timeoutMs: (LIFETIME_S + 4) * 1000, what: 'signed out in the other tab' })
      expect(app.events.filter((e) => e.status === 401).map((e) => e.code)).toContain('session_ended')
      // From the moment the sign-out page ended the session (a refresh may be answered just before
      // it, and its answer lost as the tab navigates away), no refresh succeeds: not by Clerk, and
      // not by the proxy replaying a result kept from before (`__client_uat=0` says signed out).
      const signOut = app.traffic.find((h) => h.path === '/__clerk/sign-out' && h.at >= since)!
      expect(signOut.status).toBe(302)
      expect(app.traffic.filter((h) => isRefresh(h) && h.arrivedAt > signOut.at && h.status !== 401 && h.status !== 503)).toEqual([])
      await sleep(1_000)
      for (const tab of tabs) {
        expect(await tab.evaluate(signedOut)).toBe(true)
        expect(await tab.evaluate(async () => (await fetch('/api/me')).status)).toBe(401)
        expect(await pageErrors(tab)).toEqual([])
      }
      expect(app.clerk.stats().handshakes).toBe(handshakes) // nothing signed the browser in again
    })
  })

  it('the race with the middleware: 3 tabs, GET /api/me every 500 ms from each, 4 at-expiry cycles of 4 s tokens (RACE_CYCLES=10 for ten): no call refused', async () => {
    const { app, tabs } = await signedInTabs(3, 'refuse')
    const since = Date.now()
    for (const tab of tabs)
      await tab.evaluate(() => {
        const w = window as unknown as { __me: Record<number, number>; __meTimer: number }
        w.__me = {}
        w.__meTimer = window.setInterval(async () => {
          const status = await fetch('/api/me').then(
            (r) => r.status,
            () => 0,
          )
          w.__me[status] = (w.__me[status] ?? 0) + 1
        }, 500)
      })
    // A cycle: one refresh of the token at Clerk, by the proxy at expiry.
    const cycles = Number(process.env.RACE_CYCLES ?? 4) // RACE_CYCLES=10 for the issue's measurement
    const refreshed = () => app.refreshCalls().proxy.filter((r) => r.status === 200).length
    const before = refreshed()
    // Bounded: what happened by then is reported and judged, whether or not the cycles all came.
    await until(() => refreshed() - before >= cycles, (cycles + 2) * LIFETIME_S * 1000, `${cycles} refreshes at Clerk`).catch(() => null)
    const perTab = await Promise.all(
      tabs.map((tab) =>
        tab.evaluate(() => {
          const w = window as unknown as { __me: Record<number, number>; __meTimer: number }
          clearInterval(w.__meTimer)
          return w.__me
        }),
      ),
    )
    await sleep(300) // the last calls' answers
    const calls = app.traffic.filter((h) => h.path === '/api/me' && h.at >= since)
    const refused = calls.filter((h) => h.status !== 200)
    const proxy = app.traffic.filter((h) => isRefresh(h) && h.at >= since)
    const stats = app.clerk.stats()
    const { middleware } = app.refreshCalls()
    console.log(
      `[${name}] [refuse] race: ${calls.length} GET /api/me over ${Math.round((Date.now() - since) / 1000)} s (per tab ${perTab.map((t) => t[200] ?? 0).join('/')} signed in), ${refused.length} refused (${refused.map((h) => `${h.status} ${h.reason}`).join(', ') || 'none'}); proxy answers ${proxy.map((h) => h.status).join(' ')}; refreshes at Clerk by the proxy ${refreshed() - before}, by the middleware ${middleware.length}; consumed ${stats.byCode[CONSUMED] ?? 0}; handshakes ${stats.handshakes - 1}`,
    )
    expect(refused).toEqual([])
    expect(refreshed() - before).toBeGreaterThanOrEqual(cycles)
    expect(perTab.every((t) => (t[200] ?? 0) >= cycles * 2)).toBe(true) // every tab called all along, hidden ones at their throttled pace
    expect(middleware).toHaveLength(0) // the middleware never saw a token expired past its skew
    expect(stats.byCode[CONSUMED] ?? 0).toBe(0)
    expect(stats.handshakes).toBe(1) // the sign-in's
    for (const tab of tabs) expect(await pageErrors(tab)).toEqual([])
  })
})
