import { describe, expect, it } from 'vitest'
import { fromRefresh, plannedRefreshAt, refreshMarginMs } from '../../src/core/timing.js'
import { decodeSessionToken } from '../../src/index.js'
import { sessionJwt } from '../helpers/jwt.js'
import { worldPerTest, type World } from '../helpers/tabs.js'
import { advance } from '../helpers/time.js'

let world: World
worldPerTest(
  (w) => {
    world = w
  },
  Date.UTC(2026, 10, 26, 12, 0, 0, 137),
)

describe('the clock-offset estimator', () => {
  it('intersects the intervals of successive refreshes and never passes the real offset', () => {
    const trueOffset = -600_000 + 371 // local − issuer
    let held = null
    let sentAt = Date.UTC(2026, 10, 26, 12)
    for (let i = 0; i < 8; i++) {
      const issuedLocal = sentAt + 15
      const iat = Math.floor((issuedLocal - trueOffset) / 1000)
      const token = decodeSessionToken(sessionJwt(issuedLocal - trueOffset, { lifetimeS: 60 }))
      expect(token.issuedAt).toBe(iat)
      held = fromRefresh(token, sentAt, sentAt + 30, held)
      expect(held.offsetMs).toBeLessThanOrEqual(trueOffset)
      expect(held.offsetHighMs!).toBeGreaterThanOrEqual(trueOffset)
      sentAt = plannedRefreshAt(held, refreshMarginMs(token.lifetimeMs))
    }
    expect(held!.offsetHighMs! - held!.offsetMs).toBeLessThanOrEqual(60)
  })

  it('starts over when the clock jumps (disjoint intervals)', () => {
    const token = decodeSessionToken(sessionJwt(Date.UTC(2026, 10, 26, 12)))
    const first = fromRefresh(token, Date.UTC(2026, 10, 26, 12), Date.UTC(2026, 10, 26, 12) + 20)
    const jumped = fromRefresh(token, Date.UTC(2026, 10, 26, 12) + 3_600_000, Date.UTC(2026, 10, 26, 12) + 3_600_020, first)
    expect(jumped.offsetMs).toBeGreaterThan(3_000_000)
  })
})

describe('refresh cadence', () => {
  it.each([
    [60, +600_000],
    [60, -600_000],
    [10, +600_000],
    [10, -600_000],
    [60, 0],
  ])('with %i s tokens and the issuer %i ms off, converges within 1 percent of lifetime − margin, never holding an expired token', async (lifetimeS, skewMs) => {
    world.proxy.lifetimeS = lifetimeS
    world.proxy.skewMs = skewMs
    world.proxy.latencyMs = 20
    world.shareCookies()
    world.cookie = sessionJwt(Date.now() + skewMs, { lifetimeS })
    const tab = world.open('solo')
    tab.keeper.start()
    const heldPastExpiry: number[] = []
    const probe = setInterval(() => {
      const { token, expiresAt } = tab.keeper.getState()
      // Before the first refresh, a cookie that contradicts the clock is held as "suspect": due
      // at once and never handed out by getToken() unrefreshed. From then on, the estimate holds.
      if (!token || expiresAt === null || world.proxy.calls.length === 0) return
      const realExpiryLocal = decodeSessionToken(token).expiresAt * 1000 - skewMs
      if (expiresAt > realExpiryLocal) heldPastExpiry.push(expiresAt - realExpiryLocal)
    }, 97)
    const cycles = 14
    await advance(cycles * lifetimeS * 1000, lifetimeS >= 60 ? 200 : 50)
    clearInterval(probe)
    const times = world.proxy.calls.map((c) => c.at)
    const intervals = times.slice(1).map((t, i) => t - times[i]!)
    const ideal = lifetimeS * 1000 - refreshMarginMs(lifetimeS * 1000)
    const late = intervals.slice(-4)
    for (const interval of late) expect(Math.abs(interval - ideal) / ideal).toBeLessThan(0.01)
    expect(heldPastExpiry).toEqual([])
    expect(world.proxy.expiredOnArrival).toBe(0)
    console.log(`cadence ${lifetimeS} s tokens, skew ${skewMs / 1000} s: ideal ${ideal} ms, intervals ${intervals.join(' ')}`)
  })
})
