import { describe, expect, it } from 'vitest'
import { RefreshError, TokenUnavailableError, decodeSessionToken, type SessionKeeperError } from '../../src/index.js'
import { sessionJwt } from '../helpers/jwt.js'
import { worldPerTest, type World, type Tab } from '../helpers/tabs.js'
import { advance } from '../helpers/time.js'

let world: World
worldPerTest((w) => {
  world = w
  w.proxy.latencyMs = 20
  w.cookie = sessionJwt(Date.now())
})

function openTabs(n: number, options: Parameters<World['open']>[1] = {}): Promise<Tab[]> {
  return world.openTabs(n, (i) => ({ ...options, env: { focused: i === 0, ...options.env } }))
}

describe('409 recovery_required', () => {
  it('never signs out: every tab keeps its valid token, stops asking for it, and is told', async () => {
    const recovered: string[] = []
    const tabs = await openTabs(3, { onRecoveryRequired: (error) => recovered.push(error.code) })
    world.proxy.script = [409]
    await advance(46_000)
    expect(world.proxy.calls).toHaveLength(1)
    for (const { keeper, env } of tabs) {
      const state = keeper.getState()
      expect(state.status).toBe('active')
      expect(state.token).toBe(world.cookie)
      expect(state.error?.code).toBe('recovery_required')
      expect(env.dispatched.map((e) => e.type)).toEqual(['session-keeper:recovery'])
    }
    expect(recovered).toEqual(['recovery_required', 'recovery_required', 'recovery_required'])
    // No request loop: not before expiry, not after, not on demand, in no tab.
    await advance(30_000)
    await expect(tabs[1]!.keeper.getToken()).rejects.toBeInstanceOf(TokenUnavailableError)
    await expect(tabs[0]!.keeper.getToken({ forceRefresh: true })).rejects.toThrow(/Clerk/)
    expect(world.proxy.calls).toHaveLength(1)
    const error = await tabs[2]!.keeper.getToken().catch((e: SessionKeeperError) => e)
    expect((error as TokenUnavailableError).cause).toBeInstanceOf(RefreshError)
    expect(((error as TokenUnavailableError).cause as RefreshError).code).toBe('recovery_required')
  })

  it('ends when a newer token arrives: from the cookie in one tab, then from it to the others', async () => {
    const tabs = await openTabs(2)
    world.proxy.script = [409]
    await advance(46_000)
    expect(tabs[1]!.keeper.getState().error?.code).toBe('recovery_required')
    const fresh = sessionJwt(Date.now())
    tabs[0]!.env.cookies.set('__session', fresh) // Clerk's handshake in a reload of another tab
    tabs[0]!.env.emit('focus')
    await advance(100)
    expect(tabs[0]!.keeper.getState()).toMatchObject({ token: fresh, error: null, status: 'active' })
    tabs[1]!.env.cookies.set('__session', fresh)
    tabs[1]!.env.emit('visible')
    await advance(100)
    expect(tabs[1]!.keeper.getState()).toMatchObject({ token: fresh, error: null })
    await advance(46_000)
    expect(world.proxy.calls).toHaveLength(2) // refreshing again, once per cycle
  })

  it('setToken ends it too', async () => {
    const [tab] = await openTabs(1)
    world.proxy.script = [409]
    await advance(46_000)
    expect(tab!.keeper.setToken(sessionJwt(Date.now()))).toBe(true)
    expect(tab!.keeper.getState().error).toBeNull()
  })
})

describe("a token Clerk's middleware refreshed first (409 token_consumed)", () => {
  const consumed = () =>
    Response.json(
      { error: { code: 'recovery_required', reason: 'token_consumed', message: 'already refreshed' } },
      { status: 409, headers: { date: new Date().toUTCString() } },
    )

  it("costs nothing when the middleware's cookie lands after the 409: adopted, no recovery, no reload", async () => {
    const recovered: string[] = []
    const tabs = await openTabs(2, { onRecoveryRequired: (error) => recovered.push(error.code) })
    world.proxy.script = [consumed]
    await advance(45_500) // the refresh went out and got the 409
    expect(world.proxy.calls).toHaveLength(1)
    const fromMiddleware = sessionJwt(Date.now())
    for (const tab of tabs) tab.env.cookies.set('__session', fromMiddleware) // the page GET's answer, 300 ms later
    await advance(2_500)
    expect(recovered).toEqual([])
    for (const { keeper, env } of tabs) {
      expect(keeper.getState()).toMatchObject({ status: 'active', token: fromMiddleware, error: null })
      expect(env.dispatched.map((e) => e.type)).toEqual([])
    }
    expect(world.proxy.calls).toHaveLength(1)
    // And the next cycle refreshes the adopted token as usual.
    await advance(60_000)
    expect(world.proxy.calls.map((c) => c.token)).toContain(fromMiddleware)
  })

  it('is recovery when no newer token appears within the wait', async () => {
    const recovered: string[] = []
    const tabs = await openTabs(2, { onRecoveryRequired: (error) => recovered.push(error.code) })
    world.proxy.script = [consumed]
    await advance(45_500)
    expect(recovered).toEqual([]) // still watching the cookie
    await advance(2_500)
    expect(recovered).toEqual(['recovery_required', 'recovery_required'])
    for (const { keeper } of tabs) expect(keeper.getState().error?.code).toBe('recovery_required')
  })
})

describe('401', () => {
  it('session_ended signs out every tab; a 401 with any other code is recovery, not a sign-out', async () => {
    const tabs = await openTabs(2)
    world.proxy.script = [() => Response.json({ error: { code: 'unauthorized', message: 'x' } }, { status: 401 })]
    await advance(46_000)
    expect(tabs.map((t) => t.keeper.getState().status)).toEqual(['active', 'active'])
    expect(tabs[0]!.keeper.getState().error?.code).toBe('recovery_required')
    tabs[0]!.keeper.setToken(sessionJwt(Date.now()))
    await advance(300)
    world.proxy.script = [401]
    await advance(46_000)
    expect(tabs.map((t) => t.keeper.getState().status)).toEqual(['signedOut', 'signedOut'])
    expect(tabs[1]!.keeper.getState().error?.code).toBe('refresh_rejected')
  })
})

describe('503 not_yet_expired', () => {
  it('switches every tab to refreshing at expiry: one request per cycle after the first, never an expired token', async () => {
    world.proxy.refuseUnexpired = true
    const tabs = await openTabs(3)
    const waits: number[] = []
    const expiredAnswers: string[] = []
    const failures: unknown[] = []
    // Ask for tokens all around each expiry, from every tab.
    const sampler = setInterval(() => {
      for (const { keeper } of tabs) {
        const asked = Date.now()
        keeper
          .getToken()
          .then((token) => {
            waits.push(Date.now() - asked)
            const { exp } = JSON.parse(Buffer.from(token!.split('.')[1]!, 'base64url').toString()) as { exp: number }
            if (exp * 1000 <= Date.now()) expiredAnswers.push(token!)
          })
          .catch((error: { code?: string }) => {
            // Calls still waiting when the test stops the tabs end with not_started; anything else is a failure.
            if (error.code !== 'not_started') failures.push(error)
          })
      }
    }, 700)
    await advance(6 * 60_000, 100)
    clearInterval(sampler)
    expect(world.proxy.refusedEarly).toBe(1)
    const accepted = world.proxy.calls.length - world.proxy.refusedEarly
    expect(accepted).toBeGreaterThanOrEqual(5)
    expect(accepted).toBeLessThanOrEqual(7)
    expect(world.proxy.expiredOnArrival).toBe(accepted)
    expect(expiredAnswers).toEqual([])
    expect(failures).toEqual([])
    for (const { keeper } of tabs) {
      const state = keeper.getState()
      expect(state.refreshAt! - state.expiresAt!).toBeGreaterThanOrEqual(0) // planned at expiry
      expect(state.error).toBeNull()
      expect(state.status).not.toBe('signedOut')
    }
    waits.sort((a, b) => a - b)
    console.log(
      `getToken waits at-expiry: n=${waits.length} p50=${waits[Math.floor(waits.length / 2)]} ms p99=${waits[Math.floor(waits.length * 0.99)]} ms; calls ${world.proxy.calls.length}`,
    )
    expect(waits[Math.floor(waits.length * 0.99)]).toBeLessThan(1_500)
  })

  it('a tab opened later learns the mode from the others', async () => {
    world.proxy.refuseUnexpired = true
    await openTabs(1)
    await advance(50_000)
    const late = world.open('late')
    late.keeper.start()
    await advance(300)
    const state = late.keeper.getState()
    expect(state.refreshAt! - state.expiresAt!).toBeGreaterThanOrEqual(0)
  })
})

describe('a replayed answer', () => {
  it('equal to a token already held is a success, not a loop', async () => {
    const tabs = await openTabs(2)
    const next = sessionJwt(Date.now() + 46_000)
    // Tab 0 refreshes; tab 1's own request (sent before it heard) is answered with the same jwt.
    world.proxy.script = [() => Response.json({ jwt: next }), () => Response.json({ jwt: next })]
    await advance(46_000)
    const forced = tabs[1]!.keeper.getToken({ forceRefresh: true })
    await advance(200)
    expect(await forced).toBe(next)
    await advance(5_000)
    expect(tabs.map((t) => t.keeper.getState().token)).toEqual([next, next])
    expect(tabs.map((t) => t.keeper.getState().error)).toEqual([null, null])
    expect(world.proxy.calls).toHaveLength(2)
  })

  it('equal to the very token sent, when it is due, does not loop', async () => {
    const [tab] = await openTabs(1)
    world.proxy.script = Array.from({ length: 50 }, () => () => Response.json({ jwt: world.cookie }))
    await advance(46_000)
    await advance(10_000)
    expect(world.proxy.calls.length).toBeGreaterThanOrEqual(2)
    expect(world.proxy.calls.length).toBeLessThanOrEqual(8)
    expect(tab!.keeper.getState().error).toBeNull()
  })

  it('flagged "replayed" is adopted without timing the clock on it', async () => {
    const [tab] = await openTabs(1)
    const old = sessionJwt(Date.now() + 20_000) // issued 25 s before the request below
    world.proxy.script = [() => Response.json({ jwt: old, replayed: true })]
    await advance(46_000)
    expect(tab!.keeper.getState().token).toBe(old)
    // Timed on the local clock (it agrees with the issuer here), not as if issued just now.
    expect(tab!.keeper.getState().expiresAt).toBe(decodeSessionToken(old).expiresAt * 1000)
  })
})
