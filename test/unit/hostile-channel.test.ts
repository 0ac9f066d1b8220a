/**
 * A hostile page of the same origin, posting on the agent's BroadcastChannel without the library:
 * what it can and cannot make the tabs do. Deterministic: fake time, in-memory locks, real
 * BroadcastChannels.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { decodeSessionToken } from '../../src/index.js'
import { PROTOCOL_VERSION } from '../../src/tabs/protocol.js'
import { makeJwt, sessionJwt } from '../helpers/jwt.js'
import { worldPerTest, type World, type Tab } from '../helpers/tabs.js'
import { advance, flush } from '../helpers/time.js'

let world: World
let hostile: BroadcastChannel
worldPerTest((w) => {
  world = w
  w.proxy.latencyMs = 20
  w.shareCookies()
  w.cookie = sessionJwt(Date.now())
  hostile = new BroadcastChannel(`session-keeper:v1:${w.channelName}`)
})
afterEach(() => hostile.close())

const v = PROTOCOL_VERSION
const post = (message: Record<string, unknown>) => hostile.postMessage({ v, from: 'evil', ...message })
const sidOf = (jwt: string | null) => (jwt ? decodeSessionToken(jwt).sessionId : null)

/** Forged tokens for a session the proxy never saw: every shape of iat and exp. */
function foreignTokens(): string[] {
  const now = Math.floor(Date.now() / 1000)
  return [
    makeJwt({ sid: 'sess_evil', sub: 'user_evil', iat: now, exp: now + 60 }),
    makeJwt({ sid: 'sess_evil', sub: 'user_evil', iat: now + 3, exp: now + 63 }),
    makeJwt({ sid: 'sess_evil', sub: 'user_evil', iat: now + 3600, exp: now + 3660 }),
    makeJwt({ sid: 'sess_evil', sub: 'user_evil', iat: now - 10, exp: now + 86_000 }),
  ]
}

function postForeign(): void {
  for (const token of foreignTokens()) {
    for (const cause of ['refresh', 'reply', 'set']) post({ type: 'token', token, offsetMs: 0, skewKnown: true, cause })
  }
}

/** Tabs that record every token their change events and getToken() answers carried. */
async function openWatched(n: number, options: Parameters<World['open']>[1] = {}) {
  const seen: (string | null)[] = []
  const tabs: Tab[] = []
  for (let i = 0; i < n; i++) {
    const tab = world.open(`t${i}`, { ...options, env: { focused: i === 0 } })
    tab.keeper.subscribe((state) => seen.push(state.token))
    tabs.push(tab)
  }
  return { tabs, seen }
}

describe('a token of another session, posted on the channel', () => {
  it.each([
    'start-up (during the hello wait)',
    'idle',
    'a refresh in flight',
    'just after a refresh',
  ])('is ignored and counted at %s', async (when) => {
    world.proxy.latencyMs = when === 'a refresh in flight' ? 2_000 : 20
    const { tabs, seen } = await openWatched(3)
    for (const tab of tabs) tab.keeper.start()
    if (when === 'start-up (during the hello wait)') {
      postForeign()
      await flush()
    }
    await advance(300)
    if (when !== 'idle' && when !== 'start-up (during the hello wait)') await advance(45_500)
    if (when === 'just after a refresh') await advance(2_500)
    if (when !== 'start-up (during the hello wait)') postForeign()
    await flush()
    await advance(3_000)
    const answers = await Promise.all(tabs.map((t) => t.keeper.getToken()))
    expect(answers.map(sidOf)).toEqual(['sess_1', 'sess_1', 'sess_1'])
    expect(seen.filter((token) => sidOf(token) === 'sess_evil')).toEqual([])
    for (const tab of tabs) expect(tab.keeper.getStats().messagesIgnored).toBeGreaterThanOrEqual(foreignTokens().length * 3)
    if (when !== 'idle' && when !== 'start-up (during the hello wait)') expect(world.proxy.calls.length).toBeGreaterThanOrEqual(1)
  })

  it('is adopted when the cookie agrees: a real sign-in as someone else reaches every tab within a second', async () => {
    const { tabs, seen } = await openWatched(3)
    for (const tab of tabs) tab.keeper.start()
    await advance(300)
    const switched = sessionJwt(Date.now(), { sid: 'sess_2', sub: 'user_2' })
    // The sign-in happens in tab 0; the cookie jar is shared.
    world.cookie = switched
    for (const tab of tabs) tab.env.cookies.set('__session', switched)
    tabs[0]!.env.emit('focus')
    await advance(1_000)
    expect(tabs.map((t) => t.keeper.getState().sessionId)).toEqual(['sess_2', 'sess_2', 'sess_2'])
    expect(tabs.slice(1).map((t) => t.keeper.getState().lastUpdate?.source)).toEqual(['tab', 'tab'])
    expect(seen).toContain(switched)
  })
})

describe('a same-origin script that posts bad numbers', () => {
  it('cannot make tabs adopt a token of their session issued an hour ahead, nor move their clock by 1e12 ms', async () => {
    const { tabs } = await openWatched(2)
    for (const tab of tabs) tab.keeper.start()
    await advance(300)
    const now = Math.floor(Date.now() / 1000)
    const ahead = makeJwt({ sid: 'sess_1', sub: 'user_1', iat: now + 3600, exp: now + 3660 })
    post({ type: 'token', token: ahead, offsetMs: -3_600_000, skewKnown: true, cause: 'refresh' })
    post({ type: 'token', token: sessionJwt(Date.now() + 2_000), offsetMs: 1e12, skewKnown: true, cause: 'refresh' })
    post({
      type: 'token',
      token: makeJwt({ sid: 'sess_1', iat: now + 1, exp: now + 86_401 }),
      offsetMs: 0,
      skewKnown: true,
      cause: 'refresh',
    })
    await flush()
    for (const tab of tabs) {
      expect(tab.keeper.getState().token).toBe(world.cookie)
      expect(tab.keeper.getStats().messagesIgnored).toBe(3)
    }
    // Real tokens are still taken: the refresh cycle goes on.
    await advance(47_000)
    expect(world.proxy.calls).toHaveLength(1)
    expect(new Set(tabs.map((t) => t.keeper.getState().token))).toEqual(new Set([world.cookie]))
    expect(tabs[0]!.keeper.getState().token).not.toBe(ahead)
  })

  it("a tab's own refresh answer replaces a plausible forged token learned from the channel", async () => {
    const { tabs } = await openWatched(1)
    tabs[0]!.keeper.start()
    await advance(300)
    const now = Math.floor(Date.now() / 1000)
    const forged = makeJwt({ sid: 'sess_1', sub: 'user_1', iat: now + 5, exp: now + 65 })
    post({ type: 'token', token: forged, offsetMs: 0, skewKnown: true, cause: 'refresh' })
    await flush()
    expect(tabs[0]!.keeper.getState().token).toBe(forged) // within tolerance: indistinguishable
    const asked = tabs[0]!.keeper.getToken({ forceRefresh: true })
    await advance(200)
    const real = await asked
    expect(real).not.toBe(forged)
    expect(real).toBe(world.cookie)
  })

  it("endless refresh-failed messages do not stall refreshes past the token's expiry", async () => {
    const { tabs } = await openWatched(2)
    for (const tab of tabs) tab.keeper.start()
    await advance(300)
    const first = world.cookie
    const spam = setInterval(
      () =>
        post({
          type: 'refresh-failed',
          sessionId: 'sess_1',
          code: 'refresh_rate_limited',
          message: 'forged',
          attempt: 9,
          retryAt: Date.now() + 1e9,
        }),
      200,
    )
    const expired: number[] = []
    const probe = setInterval(() => {
      for (const tab of tabs) {
        const { token, status } = tab.keeper.getState()
        if (status === 'expired') expired.push(Date.now())
        void token
      }
    }, 250)
    await advance(3 * 60_000, 100)
    clearInterval(spam)
    clearInterval(probe)
    expect(world.proxy.calls.length).toBeGreaterThanOrEqual(3)
    expect(tabs[0]!.keeper.getState().token).not.toBe(first)
    expect(expired).toEqual([])
  })

  it('a failure report repeated endlessly delays the tabs once, by retryMaxDelayMs at most', async () => {
    const { tabs } = await openWatched(2, { retryMaxDelayMs: 8_000 })
    for (const tab of tabs) tab.keeper.start()
    await advance(300)
    const report = { type: 'refresh-failed', sessionId: 'sess_1', code: 'refresh_rate_limited', message: 'forged', attempt: 3 }
    await advance(44_000) // 1 s before the refresh is due
    const spam = setInterval(() => post({ ...report, retryAt: Date.now() + 1e9 }), 200)
    post({ ...report, retryAt: Date.now() + 1e9 })
    await advance(7_500)
    expect(world.proxy.calls).toHaveLength(0) // honoured: as a real Retry-After would be
    await advance(1_000)
    clearInterval(spam)
    // The same report again (the same failure count) moves nothing: the refresh went out.
    expect(world.proxy.calls).toHaveLength(1)
    expect(tabs.every((tab) => tab.keeper.getState().status === 'active')).toBe(true)
  })

  it('holding the refresh lock while announcing "refreshing" does not stall refreshes past expiry', async () => {
    const { tabs } = await openWatched(2)
    for (const tab of tabs) tab.keeper.start()
    await advance(300)
    // The hostile page takes the lock and never lets go, and keeps saying it is refreshing.
    const lockName = `session-keeper:${world.channelName}:refresh`
    void world.locks.forTab('evil').request(lockName, {}, () => new Promise(() => {}))
    const spam = setInterval(() => post({ type: 'refreshing', sessionId: 'sess_1' }), 200)
    const expired: number[] = []
    const probe = setInterval(() => {
      if (tabs.some((t) => t.keeper.getState().status === 'expired')) expired.push(Date.now())
    }, 250)
    await advance(2 * 60_000, 100)
    clearInterval(spam)
    clearInterval(probe)
    expect(world.proxy.calls.length).toBeGreaterThanOrEqual(2)
    expect(tabs[0]!.keeper.getStats().lockSteals + tabs[1]!.keeper.getStats().lockSteals).toBeGreaterThanOrEqual(1)
    expect(expired).toEqual([])
  })
})
