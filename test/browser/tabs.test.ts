import { describe, expect, it } from 'vitest'
import { startApp } from '../helpers/app.js'
import type { Tab } from './drivers/index.js'
import { closeAll, counts, engines, expectSound, refreshRequests, sleep, state, useTabs, visibility, type Policy } from './harness.js'

describe.each(engines)('[%s]', (name) => {
  const browser = useTabs(name)
  const { tabs } = browser
  /** Browser-level offline where the engine has it; in WebKit the app's server drops every request. */
  async function setOffline(offline: boolean): Promise<void> {
    if (browser.engine.can.offline) await browser.session.setOffline(offline)
    else browser.app.setOffline(offline)
  }

  describe.each(['accept', 'refuse'] as const)('with a Clerk that %ss unexpired tokens', (policy: Policy) => {
    it('5 tabs cost Clerk as many refreshes as 1 tab, with 4 of them hidden as the engine hides background tabs', async () => {
      const runMs = 14_000
      await tabs(1, { policy })
      let before = browser.app.clerk.stats().refreshes
      browser.app.requests.length = 0
      await sleep(runMs)
      const single = browser.app.clerk.stats().refreshes - before
      await closeAll(browser.session, browser.app)

      const pages = await tabs(5, { policy })
      expect(await visibility(pages)).toEqual(['visible', 'hidden', 'hidden', 'hidden', 'hidden'])
      before = browser.app.clerk.stats().refreshes
      browser.app.requests.length = 0
      await sleep(runMs)
      const five = browser.app.clerk.stats().refreshes - before
      const accepted = browser.app.requests.filter((r) => r.status === 200)
      const refusedEarly = browser.app.requests.filter((r) => r.code === 'not_yet_expired').length
      console.log(
        `[${name}] [${policy}] Clerk refreshes over ${runMs / 1000} s of 6 s tokens: 1 tab ${single}, 5 tabs ${five}; proxy requests ${browser.app.requests.length}, refused early ${refusedEarly}`,
      )
      expect(five).toBeGreaterThanOrEqual(2)
      expect(Math.abs(five - single)).toBeLessThanOrEqual(1) // same cadence (window edges may cut one)
      expect(new Set(accepted.map((r) => r.token)).size).toBe(accepted.length) // one refresher per cycle
      expect(browser.app.requests.length - accepted.length).toBeLessThanOrEqual(1) // at most the first cycle's refusal
      await expect.poll(async () => new Set(await Promise.all(pages.map(async (p) => (await state(p)).token))).size).toBe(1)
      expectSound(await counts(pages), 50, runMs / 1000)
      // Nothing in storage, and the refresh token stays out of reach of page scripts.
      for (const page of pages) {
        const exposed = await page.evaluate(() => ({ stored: localStorage.length + sessionStorage.length, cookies: document.cookie }))
        expect(exposed.stored).toBe(0)
        expect(exposed.cookies).not.toMatch(/__refresh/)
      }
    })

    it('closing the refreshing tab mid-refresh leaves no tab with an expired token: another tab finishes before expiry', async () => {
      const pages = await tabs(4, { policy })
      browser.app.clerk.setFaults({ latencyMs: 1_500 })
      // The refresher is the tab whose request counter moves (the request then sits 1.5 s upstream).
      const sent = await Promise.all(pages.map(refreshRequests))
      let refresher: Tab | undefined
      for (const deadline = Date.now() + 10_000; !refresher && Date.now() < deadline; await sleep(30)) {
        const now = await Promise.all(pages.map(refreshRequests))
        refresher = pages.find((_, i) => now[i]! > sent[i]!)
      }
      expect(refresher, 'a tab sent a refresh').toBeDefined()
      await sleep(200) // its request is in flight
      const expiresAt = (await state(refresher!)).expiresAt!
      await refresher!.close()
      const survivors = pages.filter((p) => p !== refresher)
      browser.app.clerk.setFaults({ latencyMs: 20 })
      // Another tab holds a newer token before the one in flight expired.
      await Promise.all(
        survivors.map((p) =>
          p.waitFor((exp) => (window.sessionKeeper!.getState().expiresAt ?? 0) > exp, expiresAt, {
            timeoutMs: Math.max(0, expiresAt - Date.now()) + 3_500,
            what: 'a token newer than the one whose refresh was cut off',
          }),
        ),
      )
      const taken = Date.now()
      console.log(
        `[${name}] [${policy}] refresher closed mid-refresh; the survivors held a newer token ${expiresAt - taken} ms before the old one expired`,
      )
      // A Clerk that refuses early refreshes is asked just after the token's latest expiry (up to a
      // second after the earliest): the tab standing by behind the one closed takes over after
      // the hand-off wait, which a hidden tab's throttled timers stretch to a second, and its
      // request joins the closed tab's, still upstream (1.5 s), at the proxy. Meanwhile getToken()
      // waits or throws, never answers an expired token (the sampler below).
      expect(taken).toBeLessThan(expiresAt + (policy === 'refuse' ? 4_000 : 0))
      await sleep(9_000)
      for (const page of survivors) expect((await state(page)).status).toMatch(/active|refreshing/)
      expectSound(await counts(survivors), 20, 9)
      // Refreshes before expiry every 3 s, or at expiry every 6 s when Clerk refuses early ones.
      expect(browser.app.clerk.stats().refreshes).toBeGreaterThanOrEqual(policy === 'accept' ? 2 : 1)
    })
  })

  it('a 409 in one tab puts every tab in recovery_required with no request loop; a new session cookie ends it', async () => {
    const pages = await tabs(3, { lifetimeSeconds: 5 })
    const first = await state(pages[0]!)
    // The refresh cookie is lost (another app on the domain, a browser clean-up …): the proxy answers 409.
    await browser.session.clearCookies(/^__refresh/)
    await Promise.all(
      pages.map((p) =>
        p.waitFor(() => window.sessionKeeper!.getState().error?.code === 'recovery_required', undefined, { timeoutMs: 10_000 }),
      ),
    )
    for (const page of pages) expect((await state(page)).status).toMatch(/active|expired/)
    await sleep(6_000) // past the token's expiry: still exactly one request, from one tab
    expect(browser.app.requests.filter((r) => r.status === 409)).toHaveLength(1)
    const events = await Promise.all(pages.map((p) => p.evaluate(() => (window as unknown as { __recoveries: number }).__recoveries)))
    expect(events).toEqual([1, 1, 1])
    // Clerk's handshake, as a reload through its middleware would do it: new cookies.
    await browser.session.open(`${browser.app.origin}/login?user=user_again`, 'back')
    await Promise.all(
      pages.map((p) =>
        p.waitFor(
          (sid) => {
            const s = window.sessionKeeper!.getState()
            return s.status === 'active' && s.error === null && s.sessionId !== sid
          },
          first.sessionId,
          { timeoutMs: 5_000 },
        ),
      ),
    )
  })

  it('a sign-in without a page load (cookies set by a fetch in one tab) reaches every tab within 1.5 s', async () => {
    const opened = await openTabsSignedOut(2)
    const documents = await Promise.all(opened.map((p) => p.evaluate(() => performance.timeOrigin)))
    const started = Date.now()
    await opened[0]!.evaluate(() => fetch('/login', { credentials: 'same-origin' }).then(() => null)) // Set-Cookie, no navigation
    await Promise.all(
      opened.map((p) => p.waitFor(() => window.sessionKeeper!.getState().status === 'active', undefined, { timeoutMs: 1_500 })),
    )
    const elapsed = Date.now() - started
    console.log(`[${name}] sign-in by cookie reached both tabs (one hidden) in ${elapsed} ms`)
    expect(elapsed).toBeLessThan(1_500)
    expect(await Promise.all(opened.map((p) => p.evaluate(() => performance.timeOrigin)))).toEqual(documents) // no page load
  })

  async function openTabsSignedOut(count: number): Promise<Tab[]> {
    const app = await startApp({ tokenLifetimeSeconds: 60, unexpiredTokens: 'accept' })
    browser.keep(app)
    const session = await browser.engine.newSession()
    browser.keep(app, session)
    const pages = [await session.open(app.origin, 'front')]
    for (let i = 1; i < count; i++) pages.push(await session.open(app.origin, 'back'))
    for (const page of pages) await page.waitFor(() => window.sessionKeeper?.getState().status === 'signedOut')
    return pages
  }

  it('a 401 session_ended signs every tab out', async () => {
    const pages = await tabs(3, { lifetimeSeconds: 4 })
    const sessionId = (await state(pages[0]!)).sessionId!
    browser.app.clerk.revokeSession(sessionId)
    await Promise.all(
      pages.map((p) => p.waitFor(() => window.sessionKeeper!.getState().status === 'signedOut', undefined, { timeoutMs: 10_000 })),
    )
    for (const page of pages) {
      const s = await page.evaluate(() => {
        const { token, error } = window.sessionKeeper!.getState()
        return { token, code: error?.code }
      })
      expect(s).toEqual({ token: null, code: 'refresh_rejected' })
    }
  })

  it('recovers after going offline past expiry', async () => {
    const pages = await tabs(2, { lifetimeSeconds: 4 })
    await setOffline(true)
    await pages[0]!.waitFor(() => window.sessionKeeper!.getState().status === 'expired', undefined, { timeoutMs: 10_000 })
    const during = browser.app.requests.length
    await sleep(1_000)
    if (browser.engine.can.offline) {
      expect(browser.app.requests.length).toBe(during) // no retries burnt while offline
      expect((await state(pages[1]!)).online).toBe(false)
    } else {
      // WebKit: no network emulation over WebDriver Classic, so the browser does not know it is
      // offline (`navigator.onLine` stays true): its requests fail as on a dead network. The agent
      // backs off with jitter (no loop: at most two attempts in that second) and comes back at
      // its next planned retry instead of at the `online` event.
      expect(browser.app.requests.length - during).toBeLessThanOrEqual(2)
      expect(browser.app.requests.every((r) => r.status === 200 || r.by === 'dropped')).toBe(true)
    }
    // Never signed out; where the browser knows it is offline, no attempt either (WebKit's retries
    // go on, so a tab may be between two of them).
    for (const page of pages)
      expect((await state(page)).status).toMatch(browser.engine.can.offline ? /^expired$/ : /^(expired|refreshing)$/)
    await setOffline(false)
    let back = Date.now() + 5_000
    if (!browser.engine.can.offline) {
      const retryAt = Math.max(...(await Promise.all(pages.map(async (p) => (await state(p)).refreshAt ?? 0))))
      back = Math.max(back, retryAt + 5_000)
    }
    await Promise.all(
      pages.map((p) => p.waitFor(() => window.sessionKeeper!.getState().status === 'active', undefined, { timeoutMs: back - Date.now() })),
    )
    const s = await state(pages[0]!)
    expect(s.expiresAt!).toBeGreaterThan(Date.now())
    const all = await counts(pages)
    for (const c of all) {
      // A hidden tab samples about once a second (throttled): it asked before, during and after.
      expect(c.samples).toBeGreaterThan(c.hidden ? 0 : 20)
      expect(c.samples + c.errors).toBeGreaterThan(c.hidden ? 2 : 20)
      expect(c.expired).toBe(0) // offline, getToken throws (counted as errors) rather than answer an expired token
    }
  })
})
