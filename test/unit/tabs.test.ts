import { describe, expect, it } from 'vitest'
import { PROTOCOL_VERSION } from '../../src/tabs/protocol.js'
import { sessionJwt } from '../helpers/jwt.js'
import { worldPerTest, World, type Tab } from '../helpers/tabs.js'
import { advance, flush } from '../helpers/time.js'

let world: World
worldPerTest((w) => {
  world = w
  w.cookie = sessionJwt(Date.now())
})

const openTabs = (count: number, options: Parameters<World['open']>[1] = {}) => world.openTabs(count, () => options)

const tokens = (tabs: Tab[]) => new Set(tabs.map((tab) => tab.keeper.getState().token))

/** A second channel on the same name, as a hostile or buggy script on the page would open. */
function intruder(): BroadcastChannel {
  return new BroadcastChannel(`session-keeper:v1:${world.channelName}`)
}

describe('several tabs', () => {
  it('make one refresh per lifetime between them, and all hold the new token', async () => {
    const tabs = await openTabs(5)
    await advance(46_000)
    expect(world.proxy.calls).toHaveLength(1)
    expect(tokens(tabs).size).toBe(1)
    expect(tabs[0]!.keeper.getState().token).not.toBe(world.cookie)
    await advance(4 * 46_000)
    expect(world.proxy.calls).toHaveLength(5)
    expect(tokens(tabs).size).toBe(1)
    const received = tabs.reduce((sum, tab) => sum + tab.keeper.getStats().tokensFromTabs, 0)
    expect(received).toBe(5 * 4) // every refresh reached the four other tabs by message
  })

  it('tabs standing by behind the refresher, granted the lock after its token came, let go of it at once: no request, no cookie read', async () => {
    const tabs = await openTabs(5)
    world.proxy.latencyMs = 500 // the others hear "refreshing" and queue behind the lock meanwhile
    world.locks.handOverMs = 1 // the token, posted before the lock is let go, is in before the grant
    const lockName = `session-keeper:${world.channelName}:refresh`
    const readsHolding: string[] = []
    for (const tab of tabs) {
      const read = tab.env.readCookie
      tab.env.readCookie = (name) => {
        if (world.locks.holder(lockName) === tab.id) readsHolding.push(tab.id)
        return read(name)
      }
    }
    const grantsBefore = world.locks.grants.length
    await advance(46_000)
    expect(world.proxy.calls).toHaveLength(1)
    expect(tokens(tabs).size).toBe(1)
    const granted = world.locks.grants.slice(grantsBefore)
    expect(granted.length).toBeGreaterThan(1) // the refresher, then tabs that stood by
    // Only the refresher reads the cookie under the lock (before its request); a tab that stood
    // by and already has the token reads nothing (a read is a round trip to the browser).
    expect(readsHolding).toEqual([granted[0]])
    expect(tabs.every((tab) => tab.keeper.getState().status === 'active')).toBe(true)
  })

  it('as many requests with 5 tabs as with 1 over the same cycles', async () => {
    await openTabs(1)
    await advance(5 * 60_000)
    const single = world.proxy.calls.length
    world.closeAll()
    world = new World()
    world.cookie = sessionJwt(Date.now())
    await openTabs(5)
    await advance(5 * 60_000)
    expect(world.proxy.calls.length).toBe(single)
  })

  it.each([
    ['10 minutes slow', 10 * 60_000, 0],
    ['10 minutes fast', -10 * 60_000, 0],
    ['10 minutes slow, stale cookie', 10 * 60_000, 20_000],
    ['10 minutes fast, stale cookie', -10 * 60_000, 20_000],
  ])('with a clock %s and the proxy setting the cookie, one request per cycle', async (_, skewMs, ageMs) => {
    world.shareCookies()
    world.proxy.skewMs = skewMs
    world.cookie = sessionJwt(Date.now() + skewMs - ageMs)
    const tabs = await openTabs(3)
    await advance(5 * 60_000)
    const started = world.proxy.calls[0]?.at ?? 0
    // A tab whose token contradicts its clock trusts no other tab's clock until it has measured
    // its own (at most one measuring refresh per tab, at start-up: a forged token must not move
    // its clock); then one request per cycle, never two close together.
    const times = world.proxy.calls.map((c) => c.at).filter((at) => at > started + 2_000)
    expect(world.proxy.calls.length - times.length).toBeLessThanOrEqual(tabs.length)
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThan(10_000)
    expect(times.length).toBeLessThanOrEqual(8)
    expect(tokens(tabs).size).toBe(1)
  })

  it('a tab opened later takes the fresher token from the others without a request', async () => {
    const [first] = await openTabs(1)
    await advance(46_000)
    expect(world.proxy.calls).toHaveLength(1)
    const late = world.open('late') // its cookie still holds the first, older token
    late.keeper.start()
    await advance(300)
    expect(late.keeper.getState().token).toBe(first!.keeper.getState().token)
    expect(late.keeper.getState().lastUpdate?.source).toBe('tab')
    expect(world.proxy.calls).toHaveLength(1)
  })

  it('a tab without the cookie does not take a session from the channel: the cookie must agree', async () => {
    const [first] = await openTabs(1)
    world.cookie = null
    const late = world.open('late')
    late.keeper.start()
    expect(late.keeper.getState().status).toBe('loading')
    await advance(300)
    expect(await late.keeper.getToken()).toBeNull()
    expect(late.keeper.getStats().messagesIgnored).toBeGreaterThanOrEqual(1)
    // Positive control: the same tab with the cookie, or an app that supplies tokens and says so.
    const withCookie = world.open('with-cookie')
    withCookie.env.cookies.set('__session', first!.keeper.getState().token!)
    withCookie.keeper.start()
    const supplied = world.open('supplied', { initialToken: null, acceptOtherSessionsFromTabs: true })
    supplied.keeper.start()
    await advance(300)
    expect(await withCookie.keeper.getToken()).toBe(first!.keeper.getState().token)
    expect(await supplied.keeper.getToken()).toBe(first!.keeper.getState().token)
  })

  it('prefers the visible, focused tab as the refresher', async () => {
    const hidden = [
      world.open('h1', { env: { visible: false, focused: false } }),
      world.open('h2', { env: { visible: false, focused: false } }),
    ]
    const focused = world.open('focused')
    for (const tab of [...hidden, focused]) tab.keeper.start()
    await advance(3 * 50_000)
    expect(world.proxy.calls.length).toBeGreaterThanOrEqual(3)
    expect(focused.keeper.getStats().refreshRequests).toBe(world.proxy.calls.length)
    for (const tab of hidden) expect(tab.keeper.getStats().refreshRequests).toBe(0)
  })

  it('idle tabs run no timer callback in a normal cycle', async () => {
    const [leader, ...idle] = await openTabs(4)
    leader!.env.focused = true
    for (const tab of idle) tab.env.visible = false
    await advance(5 * 60_000)
    for (const tab of idle) expect(tab.keeper.getStats().timerCallbacks).toBe(0)
    // Positive control: the timers are live — the leader's fired once per cycle, and it refreshed.
    expect(leader!.keeper.getStats().timerCallbacks).toBeGreaterThanOrEqual(5)
    expect(world.proxy.calls.length).toBeGreaterThanOrEqual(5)
    expect(idle.every((tab) => tab.keeper.getState().token === leader!.keeper.getState().token)).toBe(true)
  })

  it('finish the refresh before expiry when the refreshing tab crashes mid-refresh', async () => {
    const tabs = await openTabs(3)
    world.proxy.script = ['hang'] // the first refresher's request never returns: it crashed
    await advance(45_200)
    expect(world.proxy.calls).toHaveLength(1)
    const refresher = tabs.find((tab) => tab.keeper.getStats().refreshRequests === 1)!
    world.crash(refresher)
    await advance(1_000)
    const survivors = tabs.filter((tab) => tab !== refresher)
    expect(world.proxy.calls).toHaveLength(2)
    expect(tokens(survivors).size).toBe(1)
    expect(survivors[0]!.keeper.getState().token).not.toBe(world.cookie)
    for (const tab of survivors) expect(tab.keeper.getState().status).toBe('active')
  })

  it('take the lock from a frozen refresher in time', async () => {
    // Frozen: keeps the lock and runs nothing, not even its own request timeout. The lock-wait
    // jitter keeps the two waiting tabs 83 ms apart, so the second has the first one's new
    // token before its own wait ends. (With Math.random two tabs can end their waits within
    // the moment a message takes, and both send: the proxy then makes one call to Clerk of the two.)
    const tabs = await world.openTabs(3, (i) => ({ requestTimeoutMs: 60_000, random: () => i / 3 }))
    world.proxy.script = ['hang']
    await advance(45_200)
    const frozen = tabs.find((tab) => tab.keeper.getStats().refreshRequests === 1)!
    const others = tabs.filter((tab) => tab !== frozen)
    await advance(9_000)
    expect(world.proxy.calls).toHaveLength(1)
    await advance(1_000) // 55 s: the wait ends 5 s before expiry
    expect(world.proxy.calls).toHaveLength(2)
    expect(others.some((tab) => tab.keeper.getStats().lockSteals === 1)).toBe(true)
    for (const tab of others) {
      expect(tab.keeper.getState().expiresAt!).toBeGreaterThan(Date.now() + 30_000)
      expect(await tab.keeper.getToken()).toBe(others[0]!.keeper.getState().token)
    }
  })

  it('a page in the back/forward cache closes its channel and, restored, opens a new one and catches up without a request', async () => {
    world.shareCookies()
    const tabs = await openTabs(2)
    const [front, cached] = tabs as [Tab, Tab]
    cached.env.emit('pagehide') // navigated away; kept in the back/forward cache
    const channelsBefore = cached.channels.length
    await advance(50_000) // the front tab refreshes meanwhile
    expect(world.proxy.calls).toHaveLength(1)
    expect(cached.keeper.getStats().tokensFromTabs).toBe(0) // no message reached it while cached
    cached.env.emit('pageshow')
    await advance(200)
    expect(cached.channels.length).toBe(channelsBefore + 1)
    expect(cached.keeper.getState()).toMatchObject({ token: front.keeper.getState().token, status: 'active' })
    expect(cached.keeper.getStats().refreshRequests).toBe(0)
    // Back on the channel: a sign-out in the other tab reaches it.
    front.keeper.signOut()
    await advance(100)
    expect(cached.keeper.getState().status).toBe('signedOut')
  })

  it('a page that goes away in the middle of its refresh lets go of the lock and the request at once, and refreshes nothing while away', async () => {
    world.shareCookies()
    const tabs = await openTabs(2)
    world.proxy.script = ['hang'] // the request of the page that leaves is never answered (frozen)
    await advance(45_500)
    const leaving = tabs.find((tab) => tab.keeper.getStats().refreshRequests === 1)!
    const other = tabs.find((tab) => tab !== leaving)!
    expect(world.proxy.calls).toHaveLength(1)
    const first = world.proxy.calls[0]!.token
    const lock = `session-keeper:${world.channelName}:refresh`
    expect(world.locks.holder(lock)).toBe(leaving.id)
    leaving.env.emit('pagehide')
    await flush()
    expect(world.locks.holder(lock)).not.toBe(leaving.id)
    const leftAt = Date.now()
    await advance(1_000)
    // The other tab, standing by behind it, had the lock handed over (not stolen after its wait).
    expect(world.proxy.calls).toHaveLength(2)
    expect(world.proxy.calls[1]!.at - leftAt).toBeLessThan(1_000)
    expect(other.keeper.getStats().lockSteals).toBe(0)
    expect(other.keeper.getState().token).not.toBe(first)
    await advance(120_000) // away: no refresh of its own, whatever its timer said
    expect(leaving.keeper.getStats().refreshRequests).toBe(1)
    leaving.env.emit('pageshow')
    await advance(300)
    expect(leaving.keeper.getState()).toMatchObject({ status: 'active', token: other.keeper.getState().token })
    expect(leaving.keeper.getStats().refreshRequests).toBe(1)
  })

  it('signOut() in one tab signs every tab out', async () => {
    const tabs = await openTabs(3)
    tabs[1]!.keeper.signOut()
    await flush()
    for (const tab of tabs) expect(tab.keeper.getState()).toMatchObject({ status: 'signedOut', token: null })
    for (const tab of tabs) expect(await tab.keeper.getToken()).toBeNull()
    await advance(120_000)
    expect(world.proxy.calls).toHaveLength(0)
  })

  it('a refresh answer that lands after sign-out does not bring the session back', async () => {
    const tabs = await openTabs(3)
    world.proxy.latencyMs = 2_000
    await advance(45_500) // a refresh is in flight in one tab
    const refresher = tabs.find((tab) => tab.keeper.getStats().refreshRequests === 1)!
    const other = tabs.find((tab) => tab !== refresher)!
    other.keeper.signOut()
    await advance(3_000) // the answer arrives after the sign-out
    for (const tab of tabs) expect(tab.keeper.getState()).toMatchObject({ status: 'signedOut', token: null })
    await advance(60_000)
    expect(world.proxy.calls).toHaveLength(1)
  })

  it('a 401 in one tab signs every tab out with refresh_rejected', async () => {
    const tabs = await openTabs(3)
    world.proxy.script = [401]
    await advance(46_000)
    for (const tab of tabs) {
      expect(tab.keeper.getState().status).toBe('signedOut')
      expect(tab.keeper.getState().error?.code).toBe('refresh_rejected')
    }
    expect(world.proxy.calls).toHaveLength(1)
  })

  it('share a failure: no other tab retries before the backoff says so', async () => {
    const tabs = await openTabs(4, { random: () => 0.5 })
    world.proxy.script = [503, 503]
    await advance(45_700) // 45 s: fail; +0.5 s: fail; +1 s: succeeds
    expect(world.proxy.calls).toHaveLength(2)
    await advance(1_000)
    expect(world.proxy.calls).toHaveLength(3)
    expect(tokens(tabs).size).toBe(1)
  })

  it('ignore and count malformed, unknown, stale and foreign messages', async () => {
    const tabs = await openTabs(2)
    const before = tabs[0]!.keeper.getState()
    const hostile = intruder()
    const v = PROTOCOL_VERSION
    const stale = sessionJwt(Date.now() - 30_000)
    const messages: unknown[] = [
      'just a string',
      null,
      42,
      { v: 99, from: 'x', type: 'hello' },
      { v, type: 'token' },
      { v, from: 'x', type: 'nope' },
      { v, from: 'x', type: 'token', token: 'not.a.jwt', offsetMs: 0, skewKnown: true, cause: 'refresh' },
      { v, from: 'x', type: 'token', token: stale, offsetMs: 0, skewKnown: true, cause: 'refresh' },
      { v, from: 'x', type: 'token', token: before.token, offsetMs: 'NaN', skewKnown: true, cause: 'refresh' },
      { v, from: 'x', type: 'signed-out', sessionId: 'sess_other', rejected: true },
      { v, from: 'x', type: 'refresh-failed', sessionId: 'sess_other', code: 'x', message: '', attempt: 1, retryAt: 1e15 },
      { v, from: 'x'.repeat(100), type: 'hello' },
    ]
    for (const message of messages) hostile.postMessage(message)
    await flush()
    for (const tab of tabs) {
      expect(tab.keeper.getState()).toMatchObject({ status: 'active', token: before.token, error: null })
      expect(tab.keeper.getStats().messagesIgnored).toBe(messages.length)
    }
    // Positive control: the same intruder's one well-formed, newer token of this session is taken.
    await advance(2_000)
    const newer = sessionJwt(Date.now())
    hostile.postMessage({ v, from: 'x', type: 'token', token: newer, offsetMs: 0, skewKnown: true, cause: 'refresh' })
    await flush()
    hostile.close()
    for (const tab of tabs) expect(tab.keeper.getState().token).toBe(newer)
    await advance(46_000)
    expect(world.proxy.calls).toHaveLength(1)
  })

  it('clamp a hostile retryAt so a forged failure cannot stop refreshes for long', async () => {
    const tabs = await openTabs(2, { retryMaxDelayMs: 5_000 })
    await advance(40_000)
    const hostile = intruder()
    hostile.postMessage({
      v: PROTOCOL_VERSION,
      from: 'x',
      type: 'refresh-failed',
      sessionId: 'sess_1',
      code: 'refresh_unavailable',
      message: 'forged',
      attempt: 0,
      retryAt: Date.now() + 1e9,
    })
    await flush()
    hostile.close()
    expect(tabs[0]!.keeper.getState().error?.code).toBe('refresh_unavailable')
    await advance(6_000)
    expect(world.proxy.calls).toHaveLength(1)
    expect(tokens(tabs).size).toBe(1)
  })

  it('keep error codes from the channel inside the closed union', async () => {
    const tabs = await openTabs(1)
    const hostile = intruder()
    hostile.postMessage({
      v: PROTOCOL_VERSION,
      from: 'x',
      type: 'refresh-failed',
      sessionId: 'sess_1',
      code: 'pwned',
      message: 'forged',
      attempt: 0,
      retryAt: null,
    })
    await flush()
    hostile.close()
    expect(tabs[0]!.keeper.getState().error?.code).toBe('refresh_unavailable')
  })

  it('work one tab at a time with no BroadcastChannel at all', async () => {
    const tabs = await openTabs(1, { channel: () => null, locks: undefined })
    await advance(3 * 46_000)
    expect(world.proxy.calls).toHaveLength(3)
    expect(tabs[0]!.keeper.getState().status).toBe('active')
  })

  it('elect one refresher with the message-based lock where Web Locks are missing', async () => {
    const tabs = await openTabs(3, { locks: null })
    for (const tab of tabs) tab.env.focused = true // all fire at the same moment
    await advance(5 * 46_500)
    expect(world.proxy.calls).toHaveLength(5)
    expect(tokens(tabs).size).toBe(1)
  })

  it('keep two apps on one origin apart', async () => {
    const [a] = await openTabs(1)
    const b = world.open('b', { endpoint: '/other/refresh', channelName: undefined })
    const c = world.open('c', { endpoint: '/third/refresh', channelName: undefined })
    b.keeper.start()
    c.keeper.start()
    await advance(300)
    a!.keeper.signOut()
    b.keeper.signOut()
    await flush()
    expect(c.keeper.getState().status).toBe('active')
  })
})
