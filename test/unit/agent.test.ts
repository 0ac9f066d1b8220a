import { describe, expect, it, vi } from 'vitest'
import { RefreshError, TokenUnavailableError, type SessionState } from '../../src/index.js'
import { sessionJwt } from '../helpers/jwt.js'
import { worldPerTest, type World } from '../helpers/tabs.js'
import { advance, flush, jumpClock } from '../helpers/time.js'

let world: World
worldPerTest((w) => {
  world = w
  w.proxy.latencyMs = 0 // answers at once, so awaiting getToken() needs no fake time
  w.cookie = sessionJwt(Date.now())
})

/** One tab, started, with its initial hello window passed. */
async function startTab(options: Parameters<World['open']>[1] = {}) {
  const tab = world.open('solo', options)
  tab.keeper.start()
  await advance(250)
  return tab
}

describe('a single tab', () => {
  it('starts from the __session cookie', async () => {
    const { keeper } = await startTab()
    const state = keeper.getState()
    expect(state.status).toBe('active')
    expect(state.token).toBe(world.cookie)
    expect(state.sessionId).toBe('sess_1')
    expect(state.expiresAt! - Date.now()).toBeGreaterThan(58_000)
    expect(await keeper.getToken()).toBe(world.cookie)
  })

  it('reads another cookie name, or a token the app supplies', async () => {
    const tab = world.open('a', { cookieName: '__session_abc' })
    tab.env.cookies.set('__session_abc', world.cookie!)
    tab.keeper.start()
    expect(tab.keeper.getState().token).toBe(world.cookie)
    const supplied = sessionJwt(Date.now(), { sid: 'sess_app' })
    const other = world.open('b', { initialToken: () => supplied, channelName: 'other' })
    other.keeper.start()
    expect(other.keeper.getState().sessionId).toBe('sess_app')
  })

  it('refreshes once per lifetime, margin before expiry, and never earlier', async () => {
    const { keeper } = await startTab()
    await advance(44_000)
    expect(world.proxy.calls).toHaveLength(0)
    await advance(2_000)
    expect(world.proxy.calls).toHaveLength(1)
    await advance(4 * 60_000)
    // 45 s, then every ~46 s (the new token's expiry is measured from when it was requested)
    expect(world.proxy.calls.length).toBeGreaterThanOrEqual(5)
    expect(world.proxy.calls.length).toBeLessThanOrEqual(6)
    expect(keeper.getState().status).toBe('active')
    expect(keeper.getStats().timerCallbacks).toBe(world.proxy.calls.length)
  })

  it('derives the schedule from exp - iat, not from an assumed 60 s', async () => {
    world.cookie = sessionJwt(Date.now(), { lifetimeS: 10 })
    world.proxy.lifetimeS = 10
    await startTab()
    await advance(4_500)
    expect(world.proxy.calls).toHaveLength(0)
    await advance(1_000)
    expect(world.proxy.calls).toHaveLength(1)
  })

  it('keeps serving the old token while a refresh is in flight', async () => {
    world.proxy.latencyMs = 3_000
    const { keeper } = await startTab()
    await advance(46_000)
    expect(keeper.getState().status).toBe('refreshing')
    expect(await keeper.getToken()).toBe(world.cookie)
    await advance(3_000)
    expect(keeper.getState().status).toBe('active')
    expect(keeper.getState().token).not.toBe(world.cookie)
  })

  it('never offers an expired token in its state, even when its timer runs late', async () => {
    world.proxy.script = [503, 503, 503]
    world.proxy.retryAfter = '120'
    const { keeper } = await startTab()
    await advance(46_000) // the refresh failed; the token stays valid until 60 s
    const { token, expiresAt } = keeper.getState()
    expect(token).toBe(world.cookie)
    jumpClock(expiresAt! - Date.now()) // the moment it expires, before any timer has run
    expect(keeper.getState()).toMatchObject({ status: 'expired', token: null, sessionId: 'sess_1' })
    expect(keeper.getState().error?.code).toBe('refresh_unavailable')
  })

  it('keeps a valid token through failed refreshes and retries with backoff', async () => {
    world.proxy.script = [503, 503]
    const { keeper } = await startTab({ random: () => 0.5 })
    await advance(45_000) // t = 45.25 s
    expect(world.proxy.calls).toHaveLength(1)
    expect(keeper.getState()).toMatchObject({ status: 'active', token: world.cookie })
    expect(keeper.getState().error).toBeInstanceOf(RefreshError)
    expect(keeper.getState().error?.code).toBe('refresh_unavailable')
    await advance(200)
    expect(world.proxy.calls).toHaveLength(1) // first retry at 45 s + 0.5 · 1 s
    await advance(100)
    expect(world.proxy.calls).toHaveLength(2)
    await advance(900)
    expect(world.proxy.calls).toHaveLength(2) // second retry at 45.5 s + 0.5 · 2 s
    await advance(200)
    expect(world.proxy.calls).toHaveLength(3)
    expect(keeper.getState()).toMatchObject({ status: 'active', error: null })
  })

  it('honours Retry-After on a 429', async () => {
    world.proxy.script = [429]
    world.proxy.retryAfter = '20'
    const { keeper } = await startTab()
    await advance(45_000) // t = 45.25 s
    expect(keeper.getState().error?.code).toBe('refresh_rate_limited')
    await advance(19_000)
    expect(world.proxy.calls).toHaveLength(1)
    await advance(1_500)
    expect(world.proxy.calls).toHaveLength(2)
  })

  it('does not retry a 400 and keeps the token until it expires', async () => {
    world.proxy.script = [400]
    const { keeper } = await startTab()
    await advance(57_000) // (the Date header moved the deadline up to a second earlier: conservative)
    expect(world.proxy.calls).toHaveLength(1)
    expect(keeper.getState()).toMatchObject({ status: 'active', token: world.cookie })
    expect(keeper.getState().error?.code).toBe('refresh_refused')
    await advance(3_000)
    expect(keeper.getState().status).toBe('expired')
    await expect(keeper.getToken()).rejects.toBeInstanceOf(TokenUnavailableError)
  })

  it('ends the session on a 401: no token, signedOut, cookie expired', async () => {
    world.proxy.script = [401]
    const tab = await startTab()
    await advance(46_000)
    expect(tab.keeper.getState()).toMatchObject({ status: 'signedOut', token: null })
    expect(tab.keeper.getState().error?.code).toBe('refresh_rejected')
    expect(tab.env.cookies.has('__session')).toBe(false)
    expect(await tab.keeper.getToken()).toBeNull()
  })

  it('treats a garbled 200 as a retryable error and keeps the token', async () => {
    world.proxy.script = [() => new Response('<html>portal</html>', { status: 200 })]
    const { keeper } = await startTab({ random: () => 0.9 })
    await advance(45_000)
    expect(keeper.getState()).toMatchObject({ status: 'active', token: world.cookie })
    expect(keeper.getState().error?.code).toBe('refresh_bad_response')
    await advance(2_000)
    expect(world.proxy.calls).toHaveLength(2)
  })

  it('waits for the network instead of burning retries while offline', async () => {
    const tab = await startTab()
    tab.env.emit('offline')
    await advance(120_000)
    expect(world.proxy.calls).toHaveLength(0)
    expect(tab.keeper.getState()).toMatchObject({ status: 'expired', online: false })
    await expect(tab.keeper.getToken()).rejects.toMatchObject({ code: 'token_unavailable' })
    tab.env.emit('online')
    await flush()
    expect(world.proxy.calls).toHaveLength(1)
    expect(tab.keeper.getState()).toMatchObject({ status: 'active', online: true })
  })

  it('refreshes at once when the page wakes after sleep, and never hands out the expired token', async () => {
    const tab = await startTab()
    jumpClock(5 * 60_000) // the machine slept; no timer ran
    const token = await tab.keeper.getToken()
    expect(token).not.toBe(world.cookie)
    expect(world.proxy.calls).toHaveLength(1)
    jumpClock(5 * 60_000)
    tab.env.emit('visible')
    await flush()
    expect(world.proxy.calls).toHaveLength(2)
  })

  it('notices a timer that fires late, refreshes at once, and getToken never waits for it', async () => {
    // Timers held back 50 s, as in a throttled background tab.
    const { keeper } = await startTab({
      clock: { now: () => Date.now(), setTimeout: (fn, ms) => setTimeout(fn, ms + 50_000), clearTimeout: (h) => clearTimeout(h as never) },
    })
    await advance(70_000)
    expect(world.proxy.calls).toHaveLength(0)
    const token = await keeper.getToken() // the expired cookie token is never handed out
    expect(token).not.toBe(world.cookie)
    expect(world.proxy.calls).toHaveLength(1)
    await advance(100_000)
    expect(keeper.getStats().lateTimers).toBeGreaterThanOrEqual(1)
    expect(world.proxy.calls).toHaveLength(2)
  })

  it.each([
    ['10 minutes fast', -10 * 60_000],
    ['10 minutes slow', +10 * 60_000],
  ])('with a client clock %s, refreshes once per lifetime and never serves an expired token', async (_, skewMs) => {
    world.proxy.skewMs = skewMs
    world.cookie = sessionJwt(Date.now() + skewMs - 20_000) // issued 20 s ago on the server
    const { keeper } = await startTab()
    await flush()
    expect(world.proxy.calls).toHaveLength(1) // the token contradicts the clock: measure once
    await advance(5 * 60_000)
    expect(world.proxy.calls.length).toBeGreaterThanOrEqual(6)
    expect(world.proxy.calls.length).toBeLessThanOrEqual(8)
    for (let i = 0; i < 20; i++) {
      await advance(3_000)
      const token = await keeper.getToken()
      const exp = JSON.parse(Buffer.from(token!.split('.')[1]!, 'base64url').toString()).exp * 1000
      expect(exp).toBeGreaterThan(Date.now() + skewMs) // valid on the server's clock
    }
  })

  it('with a slow clock and the proxy down, learns the real deadline from the Date header', async () => {
    world.proxy.skewMs = 10 * 60_000 // the server is 10 minutes ahead of this machine
    world.proxy.script = Array(50).fill(503)
    world.cookie = sessionJwt(Date.now() + world.proxy.skewMs - 50_000) // 10 s left on the server
    const { keeper } = await startTab({ getTokenTimeoutMs: 1_000 })
    await flush()
    expect(world.proxy.calls.length).toBeGreaterThanOrEqual(1)
    const left = keeper.getState().expiresAt! - Date.now()
    expect(left).toBeLessThanOrEqual(10_000)
    expect(left).toBeGreaterThan(7_500)
    await advance(11_000)
    expect(keeper.getState().status).toBe('expired')
    const answer = keeper.getToken().catch((error) => error) // may wait for the next retry: let time pass
    await advance(2_000)
    expect(await answer).toMatchObject({ code: 'token_unavailable' })
  })

  it('shares one request among concurrent getToken calls on an expired token', async () => {
    world.proxy.latencyMs = 200
    const { keeper } = await startTab()
    jumpClock(61_000)
    const tokens = Promise.all(Array.from({ length: 5 }, () => keeper.getToken()))
    await advance(400)
    const answers = await tokens
    expect(new Set(answers).size).toBe(1)
    expect(answers[0]).not.toBe(world.cookie)
    expect(world.proxy.calls).toHaveLength(1)
  })

  it('forces a refresh on request, concurrent forced calls sharing it', async () => {
    const { keeper } = await startTab()
    await advance(2_000)
    const [a, b] = await Promise.all([keeper.getToken({ forceRefresh: true }), keeper.getToken({ forceRefresh: true })])
    expect(a).toBe(b)
    expect(a).not.toBe(world.cookie)
    expect(world.proxy.calls).toHaveLength(1)
  })

  it('throws a typed error within a bounded wait when no valid token can be had', async () => {
    world.proxy.script = Array(20).fill(503)
    const { keeper } = await startTab({ getTokenTimeoutMs: 5_000 })
    jumpClock(61_000)
    const result = keeper.getToken().catch((error) => error)
    await advance(6_000)
    const error = await result
    expect(error).toBeInstanceOf(TokenUnavailableError)
    expect(error.cause).toBeInstanceOf(RefreshError)
    expect(error.cause.code).toBe('refresh_unavailable')
  })

  it('refuses getToken before start with code not_started', async () => {
    const tab = world.open('idle')
    await expect(tab.keeper.getToken()).rejects.toMatchObject({ code: 'not_started' })
  })

  it('survives a malformed cookie: typed error, signedOut, then setToken works', async () => {
    world.cookie = 'not-a-jwt'
    const { keeper } = await startTab()
    expect(keeper.getState()).toMatchObject({ status: 'signedOut', token: null })
    expect(keeper.getState().error?.code).toBe('token_malformed')
    expect(() => keeper.setToken('still.not.jwt')).toThrowError(expect.objectContaining({ code: 'token_malformed' }))
    const good = sessionJwt(Date.now())
    expect(keeper.setToken(good)).toBe(true)
    expect(await keeper.getToken()).toBe(good)
  })

  it('ignores an older token for the same session, and adopts a session switch', async () => {
    const { keeper } = await startTab()
    const seen: SessionState[] = []
    keeper.subscribe((state) => seen.push(state))
    expect(keeper.setToken(sessionJwt(Date.now() - 30_000))).toBe(false)
    expect(keeper.getState().token).toBe(world.cookie)
    await advance(1_000)
    const other = sessionJwt(Date.now(), { sid: 'sess_2', sub: 'user_2' })
    expect(keeper.setToken(other)).toBe(true)
    expect(keeper.getState()).toMatchObject({ sessionId: 'sess_2', userId: 'user_2', token: other })
    expect(seen.at(-1)?.sessionId).toBe('sess_2')
  })

  it('stop() removes every timer and listener', async () => {
    const tab = await startTab()
    expect(vi.getTimerCount()).toBeGreaterThan(0)
    expect(tab.env.listenerCount).toBe(1)
    tab.keeper.stop()
    expect(vi.getTimerCount()).toBe(0)
    expect(tab.env.listenerCount).toBe(0)
    await advance(120_000)
    expect(world.proxy.calls).toHaveLength(0)
  })

  it('fetch() sends the bearer token and retries once with a forced refresh on 401', async () => {
    const { keeper } = await startTab({
      fetch: async (input, init) => {
        const request = input instanceof Request ? input : new Request(String(input), init)
        if (request.url.endsWith('/api/session/refresh')) return world.proxy.fetch(request)
        const auth = request.headers.get('authorization')
        seenAuth.push(auth)
        return new Response(await request.text(), { status: auth === `Bearer ${world.cookie}` ? 401 : 200 })
      },
    })
    const seenAuth: (string | null)[] = []
    await advance(1_000) // a new token differs from the cookie's only once a second has passed
    const response = await keeper.fetch(`${location.origin}/api/data`, { method: 'POST', body: 'payload' })
    expect(response.status).toBe(200)
    expect(await response.text()).toBe('payload')
    expect(seenAuth).toHaveLength(2)
    expect(seenAuth[0]).toBe(`Bearer ${world.cookie}`)
    expect(seenAuth[1]).toBe(`Bearer ${keeper.getState().token}`)
    expect(world.proxy.calls).toHaveLength(1)
  })

  it('fetch() attaches the token only to its own origin and authorizedOrigins', async () => {
    const seen: Record<string, string | null> = {}
    const { keeper } = await startTab({
      authorizedOrigins: ['https://api.example.test'],
      fetch: async (input) => {
        const request = input as Request
        seen[new URL(request.url).origin] = request.headers.get('authorization')
        return new Response('ok')
      },
    })
    for (const url of [
      `${location.origin}/a`,
      'https://api.example.test/b',
      'https://evil.example.test/c',
      'https://api.example.test.evil.test/d',
    ])
      await keeper.fetch(url)
    expect(seen).toEqual({
      [location.origin]: `Bearer ${world.cookie}`,
      'https://api.example.test': `Bearer ${world.cookie}`,
      'https://evil.example.test': null,
      'https://api.example.test.evil.test': null,
    })
  })
})
