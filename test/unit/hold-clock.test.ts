/**
 * Issue 19, the pure parts: the proxy's estimate of Clerk's clock (`clerkClock.ts`), the agent's
 * use of the proxy's word on it (`withClerkTime`), the hold window in answers and messages.
 */
import { describe, expect, it } from 'vitest'
import { atExpiryDue } from '../../src/agent/state.js'
import { outcomeOf } from '../../src/agent/outcome.js'
import { fromRefresh, fromUnmeasured, localExpiry, withClerkTime } from '../../src/core/timing.js'
import { decodeSessionToken } from '../../src/core/token.js'
import { RefreshError } from '../../src/errors/RefreshError.js'
import { createClerkClock, observeSecond } from '../../src/server/clerkClock.js'
import { parseMessage } from '../../src/tabs/protocol.js'
import { makeJwt } from '../helpers/jwt.js'

describe("the proxy's estimate of Clerk's clock (the lead τ: sent at t, Clerk reads t − τ on arrival)", () => {
  it('knows nothing before a two-sided observation, and tells the browser nothing without a proven low end', () => {
    const clock = createClerkClock()
    expect(clock.lead()).toBeNull()
    expect(clock.clerkTimeAtMost(1_000)).toBeNull()
    clock.observe(-Infinity, 40) // a refresh: τ ≤ 40
    expect(clock.lead()).toBeNull()
    expect(clock.clerkTimeAtMost(1_000)).toBeNull()
    clock.observe(-60, Infinity) // a refusal: τ > −60
    expect(clock.lead()).toEqual({ low: -60, high: 40 })
    expect(clock.clerkTimeAtMost(1_000)).toBe(1_060)
  })

  it("narrows with Clerk's Date header and every refusal and refresh, never widening", () => {
    const clock = createClerkClock()
    // Sent at 10 000.2 s, answered 0.1 s later, Date 10 000 s: τ ∈ (−800, 300].
    observeSecond(clock, 10_000_200, 10_000_300, 10_000_000)
    expect(clock.lead()).toEqual({ low: -800, high: 300 })
    clock.observe(-250, Infinity)
    clock.observe(-Infinity, 100)
    clock.observe(-900, 900) // says less than what is known: no change
    expect(clock.lead()).toEqual({ low: -250, high: 100 })
  })

  it('a contradiction (a stepped clock, a faster way in) starts over from the newest observation', () => {
    const clock = createClerkClock()
    clock.observe(-120, -100)
    // Refused although sent at τ = −90: the lead is above −90 after all.
    clock.observe(-90, Infinity)
    expect(clock.lead()).toEqual({ low: -90, high: -40 }) // open side: twice the miss, 50 ms at least
    expect(clock.clerkTimeAtMost(0)).toBe(90)
    // Refreshed although sent at τ = −300: the low end is now a guess, never told to the browser.
    clock.observe(-Infinity, -300)
    expect(clock.lead()!.high).toBe(-300)
    expect(clock.lead()!.low).toBeLessThan(-300)
    expect(clock.clerkTimeAtMost(0)).toBeNull()
    clock.observe(-320, Infinity)
    expect(clock.clerkTimeAtMost(0)).toBe(320)
  })
})

describe("the agent and the proxy's word on Clerk's clock", () => {
  const now = 1_800_000_000_000
  const token = decodeSessionToken(makeJwt({ sid: 'sess_1', iat: now / 1000 - 1, exp: now / 1000 + 59 }))

  it('raises the low end of the offset (the token looks valid exactly as long as it is), never past the high end', () => {
    // Sent 1.5 s before the answer (a held request): the token alone says little.
    const held = fromRefresh(token, now - 1_500, now)
    expect(held.offsetMs).toBe(-1_500)
    const told = withClerkTime(held, now - 1_500, now - 1_400) // Clerk read at most now − 1.4 s on arrival
    expect(told.offsetMs).toBe(-100)
    expect(localExpiry(told)).toBe(token.expiresAt * 1000 - 100)
    // A word that would put the offset above what the token proves, or lower it, is not taken.
    expect(withClerkTime(held, now - 1_500, now - 3_000)).toBe(held)
    expect(withClerkTime(told, now - 1_500, now)).toBe(told)
  })

  it('refreshes at expiry half the hold window early when the proxy says it holds', () => {
    const held = fromRefresh(token, now - 100, now)
    const error = (holdMs?: string) => {
      const headers = holdMs === undefined ? {} : { holdMs: Number(holdMs) }
      return new RefreshError('refresh_not_yet_expired', 'not yet', { status: 503, retryAfterMs: 59_000, ...headers })
    }
    const ctx = {
      current: held,
      sentAt: now - 100,
      receivedAt: now,
      tabId: 't',
      previousAttempt: -1,
      backoff: { baseDelayMs: 1_000, maxDelayMs: 30_000, random: () => 0.5 },
    }
    const plain = outcomeOf(error(), ctx).find((e) => e.type === 'refresh-at-expiry')!
    const holding = outcomeOf(error('2000'), ctx).find((e) => e.type === 'refresh-at-expiry')!
    expect(plain).toMatchObject({ holdMs: 0, retryAt: atExpiryDue(held, 0) })
    expect(holding).toMatchObject({ holdMs: 2_000, retryAt: atExpiryDue(held, 0) - 1_000 })
    // A proxy claiming more than the contract's 2 s is held to 2 s.
    expect(outcomeOf(error('60000'), ctx).find((e) => e.type === 'refresh-at-expiry')).toMatchObject({ holdMs: 2_000 })
  })

  it("a 503 not_yet_expired with the proxy's word on Clerk's clock: a token from the cookie expires within ms of the truth, not up to a second early", () => {
    // The page's token, from the cookie: no measurement. The proxy's clock and Clerk's are 300 ms
    // ahead of this machine's; its `Date` (whole seconds) says now + 0.3 s rounded down.
    const cookie = fromUnmeasured(token, now - 100)
    const sentAt = now - 100
    const serverDate = Math.floor((now + 300 - 50) / 1000) * 1000
    const refused = (clerkTime?: number) =>
      new RefreshError('refresh_not_yet_expired', 'not yet', { status: 503, retryAfterMs: 59_000, holdMs: 2_000, serverDate, clerkTime })
    const ctx = {
      current: cookie,
      sentAt,
      receivedAt: now,
      tabId: 't',
      previousAttempt: -1,
      backoff: { baseDelayMs: 1_000, maxDelayMs: 30_000, random: () => 0.5 },
    }
    const measuredBy = (error: RefreshError) => {
      const event = outcomeOf(error, ctx).find((e) => e.type === 'clock-measured')
      return event?.type === 'clock-measured' ? event.held : null
    }
    // Clerk read at most now + 0.25 s on arrival (sent at now − 0.1 s, 50 ms on the way in).
    const told = measuredBy(refused(now + 250))!
    const byDate = measuredBy(refused())!
    const truth = -300 // local − Clerk
    expect(byDate.offsetMs).toBeLessThanOrEqual(truth)
    expect(truth - byDate.offsetMs).toBeGreaterThan(500) // the second of `Date`
    expect(told.offsetMs).toBeLessThanOrEqual(truth) // never later than the real expiry
    expect(truth - told.offsetMs).toBeLessThanOrEqual(50) // the way in
    // A word below what `Date` proves is not taken (the low end only rises).
    expect(measuredBy(refused(now + 5_000))!.offsetMs).toBe(byDate.offsetMs)
  })

  it('takes a hold window from another tab only within 0–2000 ms', () => {
    const mode = (holdMs: unknown) => parseMessage({ v: 1, from: 'tab-b', type: 'mode', refreshAtExpiry: true, holdMs })
    expect(mode(2_000)).not.toBeNull()
    expect(mode(0)).not.toBeNull()
    expect(mode(2_001)).toBeNull()
    expect(mode(-1)).toBeNull()
    expect(mode('2000')).toBeNull()
    expect(mode(Number.NaN)).toBeNull()
  })
})
