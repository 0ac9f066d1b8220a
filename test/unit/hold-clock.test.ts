/**
 * Issue 19, the pure parts: the proxy's estimate of Clerk's clock (`clerkClock.ts`), the agent's
 * use of the proxy's word on it (`withClerkTime`), the hold window in answers and messages.
 */
import { describe, expect, it } from 'vitest'
import { atExpiryDue } from '../../src/agent/state.js'
import { outcomeOf } from '../../src/agent/outcome.js'
import { fromRefresh, fromUnmeasured, latestExpiry, localExpiry, withClerkTime } from '../../src/core/timing.js'
import { decodeSessionToken } from '../../src/core/token.js'
import { RefreshError } from '../../src/errors/RefreshError.js'
import { createClerkClock } from '../../src/server/clerkClock.js'
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
    clock.observeStamp(10_000_200, 10_000_300, 10_000_000)
    expect(clock.lead()).toEqual({ low: -800, high: 300 })
    clock.observe(-250, Infinity)
    clock.observe(-Infinity, 100)
    clock.observe(-900, 900) // says less than what is known: no change
    expect(clock.lead()).toEqual({ low: -250, high: 100 })
  })

  it("tells the lower bound of Clerk's clock only from stamps (Date, iat): the offset is at most the answer's arrival minus its stamp", () => {
    const clock = createClerkClock()
    clock.observe(-Infinity, 40)
    clock.observe(-60, Infinity)
    expect(clock.clerkTimeAtLeast(1_000)).toBeNull() // refusals and refreshes bound τ, not the offset
    // Sent at 10 000.2 s, answered at 10 000.3 s, Date 10 000 s: the offset is at most 300 ms.
    clock.observeStamp(10_000_200, 10_000_300, 10_000_000)
    expect(clock.clerkTimeAtLeast(20_000_000)).toBe(20_000_000 - 300)
    clock.observeStamp(10_001_950, 10_002_040, 10_002_000) // the second turned on the way: 40 ms
    expect(clock.clerkTimeAtLeast(20_000_000)).toBe(20_000_000 - 40)
    clock.observeStamp(10_003_000, 10_003_900, 10_003_000) // a slow answer says less: no change
    expect(clock.clerkTimeAtLeast(20_000_000)).toBe(20_000_000 - 40)
    // A stepped clock: the newest observation alone counts, for this bound too.
    clock.observe(5_000, Infinity)
    expect(clock.clerkTimeAtLeast(20_000_000)).toBeNull()
    clock.observeStamp(10_010_000, 10_010_100, 10_005_000) // offset in (4 000, 5 100]
    expect(clock.clerkTimeAtLeast(20_000_000)).toBe(20_000_000 - 5_100)
    expect(clock.clerkTimeAtMost(20_000_000)).toBe(20_000_000 - 5_000)
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
    const told = withClerkTime(held, now - 1_500, now, { atMost: now - 1_400 }) // Clerk read at most now − 1.4 s on arrival
    expect(told.offsetMs).toBe(-100)
    expect(localExpiry(told)).toBe(token.expiresAt * 1000 - 100)
    // A word that would put the offset above what the token proves, or lower it, is not taken.
    expect(withClerkTime(held, now - 1_500, now, { atMost: now - 3_000 })).toBe(held)
    expect(withClerkTime(told, now - 1_500, now, { atMost: now })).toBe(told)
  })

  it("lowers the high end of the offset with the lower bound on Clerk's clock as the proxy answered (the latest expiry, closer)", () => {
    const held = fromRefresh(token, now - 1_500, now) // offset in [−1 500, 1 000]: the token's whole second
    const told = withClerkTime(held, now - 1_500, now, { atMost: now - 1_400, atLeast: now - 40 })
    expect(told).toMatchObject({ offsetMs: -100, offsetHighMs: 40 })
    expect(latestExpiry(told) - localExpiry(told)).toBe(140)
    // It only falls, and never below the low end.
    expect(withClerkTime(told, now - 1_500, now, { atLeast: now - 2_000 })).toBe(told)
    expect(withClerkTime(told, now - 1_500, now, { atLeast: now + 200 })).toBe(told)
    // An unmeasured high end (a token from the Date header alone) gets one.
    const byDate = { token, offsetMs: -900, skewKnown: true }
    expect(withClerkTime(byDate, now - 100, now, { atLeast: now - 30 })).toMatchObject({ offsetMs: -900, offsetHighMs: 30 })
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
    const refused = (clerkTime?: number, clerkTimeMin?: number) =>
      new RefreshError('refresh_not_yet_expired', 'not yet', {
        status: 503,
        retryAfterMs: 59_000,
        holdMs: 2_000,
        serverDate,
        clerkTime,
        clerkTimeMin,
      })
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

    // Without a lower bound on Clerk's clock the latest expiry is a second after the earliest,
    // so the at-expiry refresh, half the 2 s hold window before it, reaches the proxy after the
    // real expiry: past the hold, one Clerk round trip of waiting more than needed.
    const atExpiry = (error: RefreshError) => outcomeOf(error, ctx).find((e) => e.type === 'refresh-at-expiry')!
    const realExpiry = token.expiresAt * 1000 + truth
    expect(atExpiry(refused(now + 250))).toMatchObject({ retryAt: localExpiry(told) + 50 })
    // Clerk read at least now + 0.28 s as the proxy answered (20 ms on the way back): the latest
    // expiry is known within the way in and out, and the refresh goes out inside the hold.
    const both = measuredBy(refused(now + 250, now + 280))!
    expect(both.offsetHighMs).toBe(-280)
    expect(both.offsetHighMs! - truth).toBeGreaterThanOrEqual(0) // never before the real expiry
    const { retryAt } = atExpiry(refused(now + 250, now + 280)) as { retryAt: number }
    expect(retryAt).toBe(latestExpiry(both) + 50 - 1_000)
    expect(realExpiry - retryAt).toBeGreaterThan(900)
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
