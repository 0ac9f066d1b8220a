// @vitest-environment node
/**
 * Clerk's own middleware against the emulator's Frontend and Backend API, with session-keeper's
 * proxy in the same app: `@clerk/express` `clerkMiddleware()` + `getAuth(req)` on Express 5, and
 * `@clerk/backend` `authenticateRequest` on bare node:http, for both instance types. A browser is
 * Node's fetch with a cookie jar; `Date.now` is moved (the emulator's, the proxy's and the SDK's
 * clock) so that tokens expire without waiting.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { InstanceType } from '../../src/testing/index.js'
import { type ClerkApp, shiftableClock, startClerkApp } from '../helpers/clerk-app.js'

const LIFETIME_MS = 20_000
/** Clerk's SDK still accepts a token this long after it expired (its default clock skew). */
const SKEW_MS = 5_000

const cases: [InstanceType, 'express' | 'backend'][] = [
  ['production', 'express'],
  ['development', 'express'],
  ['production', 'backend'],
  ['development', 'backend'],
]

let clock: ReturnType<typeof shiftableClock>
let app: ClerkApp
afterEach(async () => {
  await app?.close()
  clock?.restore()
})

describe.each(cases)("Clerk's middleware, %s instance, %s", (instanceType, middleware) => {
  beforeEach(async () => {
    clock = shiftableClock()
    app = await startClerkApp({ instanceType, middleware, emulator: { tokenLifetimeSeconds: LIFETIME_MS / 1000 } })
  })
  const refreshCookie = () => `__refresh_${app.clerk.cookieSuffix}`

  it("signs the browser in after Clerk's hosted sign-in through exactly one handshake", async () => {
    const browser = app.browser()
    const signIn = await browser.signIn('user_alice')
    const { sid } = browser.session()!
    expect(signIn.status).toBe(200)
    expect(signIn.body).toContain(`data-user="user_alice" data-session="${sid}"`)
    expect(signIn.handshakes).toBe(1)
    expect(signIn.url.href).toBe(`${app.origin}/`) // no nonce, token or dev browser left in the URL
    expect(signIn.redirectCounts.every((count) => count === undefined || Number(count) <= 1)).toBe(true)
    expect(app.clerk.stats().byHandshakeReason).toEqual(
      instanceType === 'production' ? { 'client-uat-but-no-session-token': 1 } : { 'dev-browser-sync': 1 },
    )
    expect(browser.jar.get(refreshCookie())).toMatch(/\w{20,}/)
    // The Frontend API's own cookie never reaches the app.
    expect(browser.jar.header(new URL(app.origin))).not.toMatch(/(^|; )__client=/)

    const again = await browser.navigate('/')
    expect(again.hops).toHaveLength(1)
    expect(await browser.api('GET')).toMatchObject({ status: 200, body: { signedIn: true, userId: 'user_alice', sessionId: sid } })
    expect(await browser.api('POST')).toMatchObject({ status: 200, body: { sessionId: sid } })
    expect(app.clerk.stats().handshakes).toBe(1)
  })

  it('accepts the tokens the proxy refreshes, without a handshake or a refresh of its own', async () => {
    const browser = app.browser()
    await browser.signIn()
    const { sid } = browser.session()!
    for (let round = 0; round < 3; round++) {
      clock.advance(LIFETIME_MS + 1_000) // the agent refreshes at expiry: Clerk refuses earlier
      const refreshed = await browser.refresh()
      expect(refreshed.status).toBe(200)
      expect(browser.session()).toMatchObject({ sid, raw: refreshed.body.jwt })
      expect(browser.jar.get(`__session_${app.clerk.cookieSuffix}`)).toBe(refreshed.body.jwt)
      clock.advance(SKEW_MS + 2_000) // the token before it is now refused by the SDK, this one is not
      expect(await browser.api('GET')).toMatchObject({ status: 200, body: { sessionId: sid } })
      expect(await browser.api('POST')).toMatchObject({ status: 200, body: { sessionId: sid } })
      expect((await browser.navigate('/')).handshakes).toBe(0)
    }
    expect(app.refreshCalls().proxy).toHaveLength(3)
    expect(app.refreshCalls().middleware).toHaveLength(0)
    expect(app.clerk.stats().handshakes).toBe(1) // the sign-in's
  })

  it('after an unknown refresh cookie (proxy 409), the next page load plants a new one and the proxy refreshes again', async () => {
    const browser = app.browser()
    await browser.signIn()
    const { sid } = browser.session()!
    const planted = browser.jar.get(refreshCookie())
    app.clerk.rotateRefreshToken(sid) // the browser's refresh cookie is now unknown to Clerk
    clock.advance(LIFETIME_MS + 1_000)
    const refused = await browser.refresh()
    expect(refused).toMatchObject({ status: 409, body: { error: { code: 'recovery_required', reason: 'refresh_token_not_found' } } })

    clock.advance(SKEW_MS + 1_000)
    const recovery = await browser.navigate('/')
    expect(recovery.handshakes).toBe(1)
    expect(recovery.body).toContain(`data-session="${sid}"`) // a recovery keeps the session
    expect(recovery.redirectCounts.every((count) => count === undefined || Number(count) <= 1)).toBe(true)
    expect(app.clerk.stats().byHandshakeReason).toMatchObject({ 'session-token-expired-refresh-refresh_token_not_found': 1 })
    expect(browser.jar.get(refreshCookie())).not.toBe(planted)

    clock.advance(LIFETIME_MS + 1_000)
    const refreshed = await browser.refresh()
    expect(refreshed.status).toBe(200)
    expect(browser.session()).toMatchObject({ sid, raw: refreshed.body.jwt })
    clock.advance(SKEW_MS + 1_000)
    expect(await browser.api('GET')).toMatchObject({ status: 200, body: { sessionId: sid } })
  })

  it('a revoked session: the proxy answers 401 session_ended, and once the token expires the middleware signs out', async () => {
    const browser = app.browser()
    await browser.signIn()
    const { sid } = browser.session()!
    app.clerk.revokeSession(sid)
    // A session token is not checked with Clerk: until it expires, the middleware says signed in.
    expect(await browser.api('GET')).toMatchObject({ status: 200, body: { sessionId: sid } })

    clock.advance(LIFETIME_MS + 1_000)
    expect(await browser.refresh()).toMatchObject({ status: 401, body: { error: { code: 'session_ended' } } })
    clock.advance(SKEW_MS + 1_000)
    expect(await browser.api('GET')).toMatchObject({ status: 401, body: { signedIn: false } })
    expect(await browser.api('POST')).toMatchObject({ status: 401 })
    const page = await browser.navigate('/')
    expect(page.handshakes).toBe(1)
    expect(page.body).toContain('signed out')
    expect(browser.jar.get('__session')).toBeUndefined()
    expect(browser.jar.get('__client_uat')).toBe('0')
    expect(browser.jar.get(refreshCookie())).toBeUndefined()
    // Signed out stays signed out, with no further handshake.
    expect((await browser.navigate('/')).hops).toHaveLength(1)
    expect(await browser.api('GET')).toMatchObject({ status: 401 })
    expect(app.clerk.stats().handshakes).toBe(2)
  })

  it("Clerk's sign-out ends the session: signed out at once, and the proxy answers 401 session_ended", async () => {
    const browser = app.browser()
    await browser.signIn()
    const { sid, raw } = browser.session()!
    expect(await browser.signOut(sid)).toMatchObject({ status: 200, body: { response: { id: sid, status: 'ended' } } })
    expect(await browser.api('GET')).toMatchObject({ status: 401 })
    expect((await browser.navigate('/')).body).toContain('signed out')
    clock.advance(LIFETIME_MS + 1_000)
    expect(await browser.refresh(raw)).toMatchObject({ status: 401, body: { error: { code: 'session_ended' } } })
    expect(app.clerk.stats().handshakes).toBe(1)
  })

  it('signs in from a handshake handed over as a signed __clerk_handshake token (verified with the JWKS)', async () => {
    const browser = app.browser()
    const home = `${app.origin}/`
    const handshake = `${app.origin}/__clerk/v1/client/handshake?redirect_url=${encodeURIComponent(home)}&format=token&suffixed_cookies=true`
    const signIn = await browser.navigate(`/__clerk/sign-in?redirect_url=${encodeURIComponent(handshake)}&user_id=user_tok`)
    expect(signIn.body).toContain('data-user="user_tok"')
    expect(signIn.handshakes).toBe(1)
    expect(app.clerk.requests().some((r) => r.path.endsWith('/handshake_payload'))).toBe(false)
    expect(app.clerk.requests().some((r) => r.path.endsWith('/v1/jwks'))).toBe(true)
    expect(await browser.api('GET')).toMatchObject({ status: 200, body: { userId: 'user_tok' } })
  })

  // Tests of one instance type only are registered for it alone (nothing is skipped).
  const onlyFor = (type: typeof instanceType) => (type === instanceType ? it : () => {})
  onlyFor('development')('gives a first visit a dev browser through one handshake (signed out), and a later sign-in one more', async () => {
    const browser = app.browser()
    const visit = await browser.navigate('/')
    expect(visit).toMatchObject({ status: 200, handshakes: 1 })
    expect(visit.body).toContain('signed out')
    expect(visit.url.href).toBe(`${app.origin}/`)
    const devBrowser = browser.jar.get('__clerk_db_jwt')
    expect(devBrowser).toMatch(/^dvb_/)
    expect((await browser.navigate('/')).hops).toHaveLength(1) // nothing more to sync
    clock.advance(3_000) // a person takes longer than the redirect-loop guard's 2 s to sign in
    const signIn = await browser.signIn()
    expect(signIn.handshakes).toBe(1)
    expect(signIn.redirectCounts.every((count) => count === undefined || Number(count) <= 1)).toBe(true)
    expect(browser.jar.get('__clerk_db_jwt')).toBe(devBrowser) // the same browser, now signed in
    expect(app.clerk.stats().byHandshakeReason).toEqual({ 'dev-browser-missing': 1, 'dev-browser-sync': 1 })
  })

  onlyFor('production')('a first visit without cookies is signed out with no handshake', async () => {
    const visit = await app.browser().navigate('/')
    expect(visit).toMatchObject({ status: 200, handshakes: 0 })
    expect(visit.body).toContain('signed out')
  })
})

describe("Clerk's middleware and its secret key", () => {
  it('calls Clerk (its own refresh, the handshake payload) with CLERK_SECRET_KEY from the environment, not its secretKey option', async () => {
    clock = shiftableClock()
    app = await startClerkApp({ instanceType: 'production', envSecretKey: 'sk_live_not_the_key' })
    const browser = app.browser()
    const signIn = await browser.signIn()
    expect(signIn.body).toContain('signed out')
    const payload = app.clerk.requests().find((r) => r.path.endsWith('/handshake_payload'))
    expect(payload).toMatchObject({ status: 401, code: 'clerk_key_invalid' })

    const session = app.clerk.createSession({ origin: app.origin })
    for (const cookie of session.cookies) browser.jar.apply(cookie, new URL(app.origin))
    clock.advance(60_000 + SKEW_MS + 1_000)
    expect(await browser.api('GET')).toMatchObject({ status: 401 })
    const calls = app.clerk.requests()
    expect(calls.find((r) => r.path.endsWith('/refresh'))).toMatchObject({ status: 401, code: 'clerk_key_invalid' })
    // …while the JWKS, fetched with the `secretKey` option, was served.
    expect(calls.filter((r) => r.path.endsWith('/v1/jwks')).every((r) => r.status === 200)).toBe(true)
    expect(calls.some((r) => r.path.endsWith('/v1/jwks'))).toBe(true)
  })
})
