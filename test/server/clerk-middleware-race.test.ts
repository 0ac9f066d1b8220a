// @vitest-environment node
/**
 * The race with Clerk's middleware. When Clerk refuses early refreshes, session-keeper refreshes
 * at expiry; Clerk's middleware refreshes by itself any GET that carries a `__session` expired
 * more than its 5 s clock skew. A browser that slept past both (or a throttled tab) sends both at
 * once, with the same expired token, and Clerk refreshes each expired token once: one of the two
 * gets `…_consumed`. This file characterises what each side answers and sets.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type Browser, type ClerkApp, shiftableClock, startClerkApp } from '../helpers/clerk-app.js'

const LIFETIME_MS = 20_000
const SKEW_MS = 5_000
const CONSUMED = 'session_refresh_expired_session_token_consumed'

let clock: ReturnType<typeof shiftableClock>
let app: ClerkApp
beforeEach(async () => {
  clock = shiftableClock()
  app = await startClerkApp({
    instanceType: 'production',
    emulator: { tokenLifetimeSeconds: LIFETIME_MS / 1000, unexpiredTokens: 'refuse' },
  })
})
afterEach(async () => {
  await app.close()
  clock.restore()
})

/** Signs in, then sleeps past the token's expiry and the middleware's skew: both sides will refresh. */
async function signedInThenAsleep(browser: Browser) {
  await browser.signIn()
  const before = browser.session()!
  clock.advance(LIFETIME_MS + SKEW_MS + 1_000)
  return before
}

describe("the race between Clerk's middleware and the proxy for one expired token", () => {
  it('middleware first: its answer sets the new __session; the proxy then answers 409 recovery_required (token_consumed)', async () => {
    const browser = app.browser()
    const expired = await signedInThenAsleep(browser)
    const agent = browser.inFlight() // the agent's refresh left with the expired token

    const page = await browser.api('GET')
    expect(page.status).toBe(200)
    const set = browser.session()!
    expect(set).toMatchObject({ sid: expired.sid })
    expect(set.iat).toBeGreaterThan(expired.iat)
    // What the middleware set: Clerk's refresh directives, verbatim (`format: 'cookie'`).
    expect(page.setCookies.map((c) => c.replace(/=[^;]+/, '=<jwt>'))).toEqual([
      '__session=<jwt>; Path=/; Secure; SameSite=Lax',
      `__session_${app.clerk.cookieSuffix}=<jwt>; Path=/; Secure; SameSite=Lax`,
    ])

    const proxy = await agent.refresh(expired.raw)
    expect(proxy).toMatchObject({ status: 409, body: { error: { code: 'recovery_required', reason: 'token_consumed' } } })
    expect(proxy.setCookies).toEqual([])
    expect(app.clerk.stats().byCode).toEqual({ [CONSUMED]: 1 })
    expect(browser.session()!.raw).toBe(set.raw) // the cookie still holds the middleware's token

    // Adopting that cookie costs nothing: the middleware takes it, the proxy refreshes it at expiry.
    expect(await browser.api('POST')).toMatchObject({ status: 200, body: { sessionId: expired.sid } })
    clock.advance(LIFETIME_MS + 1_000)
    expect(await browser.refresh(set.raw)).toMatchObject({ status: 200 })
  })

  it('proxy first: the GET that carried the old token is refused (401); a page load costs a handshake', async () => {
    const browser = app.browser()
    const expired = await signedInThenAsleep(browser)
    const fetchGet = browser.inFlight()
    const pageLoad = browser.inFlight()

    const proxy = await browser.refresh()
    expect(proxy.status).toBe(200)
    const refreshed = browser.session()!
    expect(await fetchGet.api('GET')).toMatchObject({ status: 401, body: { signedIn: false } })
    expect(browser.session()!.raw).toBe(refreshed.raw) // a 401 sets no cookie: the proxy's token stays

    const page = await pageLoad.navigate('/')
    expect(page.handshakes).toBe(1)
    expect(page.body).toContain(`data-session="${expired.sid}"`)
    expect(app.clerk.stats().byHandshakeReason).toMatchObject({ [`session-token-expired-refresh-${CONSUMED}`]: 1 })
    expect(app.clerk.stats().byCode).toEqual({ [CONSUMED]: 2 })
    expect(await browser.api('GET')).toMatchObject({ status: 200, body: { sessionId: expired.sid } })
  })

  it('at the same moment: Clerk refreshes the token once, one side loses, and the cookie ends with a valid token of the session', async () => {
    const outcomes: Record<string, number> = {}
    const ROUNDS = 12
    for (let round = 0; round < ROUNDS; round++) {
      const browser = app.browser()
      const expired = await signedInThenAsleep(browser)
      const before = app.clerk.stats()
      const arrived: string[] = []
      const [page, proxy] = await Promise.all([
        browser.api('GET').finally(() => arrived.push('GET')),
        browser.refresh(expired.raw).finally(() => arrived.push('proxy')),
      ])
      const after = app.clerk.stats()
      expect(after.refreshes - before.refreshes).toBe(1)
      expect((after.byCode[CONSUMED] ?? 0) - (before.byCode[CONSUMED] ?? 0)).toBe(1)
      const key = `GET ${page.status} / proxy ${proxy.status}${proxy.body.error ? ` ${proxy.body.error.reason}` : ''}, ${arrived[0]} answered first`
      outcomes[key] = (outcomes[key] ?? 0) + 1
      expect([page.status, proxy.status].sort()).toEqual(page.status === 200 ? [200, 409] : [200, 401])
      const now = browser.session()!
      expect(now.sid).toBe(expired.sid)
      expect(now.iat).toBeGreaterThan(expired.iat)
      expect(await browser.api('POST')).toMatchObject({ status: 200 })
    }
    console.info(`race outcomes over ${ROUNDS} rounds:`, outcomes)
  })
})
