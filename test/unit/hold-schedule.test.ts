// @vitest-environment node
/**
 * Issue 19, the hold's schedule (`hold.ts`), in fake time against a Clerk whose lead is known
 * here and not to the proxy: when a held request is sent, how late the send that finds the token
 * expired is, what each hold costs in refusals, and how fast a process learns the lead.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { SessionToken } from '../../src/core/token.js'
import { createClerkClock, type ClerkClock } from '../../src/server/clerkClock.js'
import { INELIGIBLE, ProxyError } from '../../src/server/errors.js'
import { createHold } from '../../src/server/hold.js'
import type { RefreshJob, RefreshOutcome } from '../../src/server/job.js'
import { createMemoryStore } from '../../src/server/store.js'

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: Date.UTC(2026, 11, 1, 12) })
})
afterEach(() => {
  vi.useRealTimers()
})

const store = createMemoryStore()

/** A job for a token expiring `inMs` from now (whole seconds, as `exp` is). */
function jobExpiringIn(inMs: number, n: number): RefreshJob {
  const expiresAt = Math.ceil((Date.now() + inMs) / 1000)
  const token = { raw: `token-${n}`, expiresAt, issuedAt: expiresAt - 60, sessionId: 'sess_1', lifetimeMs: 60_000 } as SessionToken
  return {
    sessionId: 'sess_1',
    token,
    credentials: ['refresh'],
    body: {} as RefreshJob['body'],
    suffixedCookies: true,
    clientIp: undefined,
    store,
  }
}

/**
 * Clerk with lead `tau`: a send at `t` finds the token expired when `t − tau ≥ exp`. What it
 * answers is observed as `call.ts` observes it, at the send.
 */
function clerk(clock: ClerkClock, tau: number | (() => number), roundTripMs = 0) {
  const sends: number[] = []
  const attempt = (job: RefreshJob) => async (): Promise<RefreshOutcome> => {
    const late = Date.now() - job.token.expiresAt * 1000
    sends.push(late)
    if (roundTripMs > 0) await new Promise((resolve) => setTimeout(resolve, roundTripMs))
    if (late <= (typeof tau === 'number' ? tau : tau())) {
      clock.observe(late, Infinity)
      throw new ProxyError(503, 'not_yet_expired', 'not expired', {}, INELIGIBLE)
    }
    clock.observe(-Infinity, late)
    return { result: { jwt: 'new', cookies: [] } as unknown as RefreshOutcome['result'], replayed: false, coalesced: false }
  }
  return { sends, attempt }
}

/** One hold for a token expiring in 1 s (the fake clock stands on a whole second); the sends' lateness past `exp` (ms), the last one accepted. */
async function holdOnce(
  clock: ClerkClock,
  tau: number | (() => number),
  n = 0,
  { hold = createHold({ clock, now: () => Date.now(), holdMs: 2_000, maxHeld: 10 }), roundTripMs = 0 } = {},
): Promise<number[]> {
  const fake = clerk(clock, tau, roundTripMs)
  const job = jobExpiringIn(500, n)
  expect(hold.accepts(job)).toBe(true)
  const outcome = hold.run(job, fake.attempt(job))
  await vi.advanceTimersByTimeAsync(3_000)
  await expect(outcome).resolves.toMatchObject({ replayed: false })
  return fake.sends
}

describe('the hold walks what it does not know of the lead in quarters', () => {
  it.each([
    [50, 0],
    [300, 1],
    [600, 2],
    [950, 3],
  ])('lead %i ms in (0, 1000]: the accepted send is at most a quarter late, after %i refusals', async (tau, refused) => {
    const clock = createClerkClock()
    clock.observe(0, 1_000)
    const sends = await holdOnce(clock, tau)
    expect(sends).toHaveLength(refused + 1)
    for (const late of sends.slice(0, -1)) expect(late).toBeLessThanOrEqual(tau) // refused: not yet expired
    const accepted = sends.at(-1)!
    expect(accepted).toBeGreaterThan(tau)
    expect(accepted - tau).toBeLessThanOrEqual(250 + 4) // a step, or the release margin past the end
    const lead = clock.lead()!
    expect(lead.high - lead.low).toBeLessThanOrEqual(250)
  })

  it('learns a lead known to 1 s in three holds, and from then on sends 4 ms past it with no refusal', async () => {
    const clock = createClerkClock()
    clock.observe(-700, 300) // what `iat` and `Date` give: one second
    const tau = 137
    const holds: number[][] = []
    for (let n = 0; n < 6; n++) holds.push(await holdOnce(clock, tau, n))
    const refusals = holds.map((sends) => sends.length - 1)
    const lateness = holds.map((sends) => sends.at(-1)! - tau)
    console.log(
      `hold schedule, lead 137 ms in (−700, 300]: refusals ${refusals.join(' ')}, accepted ms past the lead ${lateness.join(' ')}`,
    )
    const lead = clock.lead()!
    expect(lead.high - lead.low).toBeLessThanOrEqual(16)
    expect(refusals.slice(3)).toEqual([0, 0, 0])
    for (const late of lateness.slice(3)) expect(late).toBeLessThanOrEqual(16 + 4)
    expect(lateness[0]).toBeLessThanOrEqual(250 + 4)
    expect(refusals.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(9)
  })
})

describe('the hold against a way in to Clerk that varies from call to call', () => {
  it.each([
    1, 2, 3,
  ])('a lead that varies by up to 40 ms (sequence %i): a release refused when the way in was longer than ever before re-opens the interval, and after ten holds none is refused', async (seed) => {
    const clock = createClerkClock()
    clock.observe(-700, 300)
    // 137 ms plus 0 to 40 ms a call: a fixed sequence, so that the test is the same every run.
    let i = 0
    const tau = () => 137 + 40 * ((Math.sin(++i * seed) + 1) / 2)
    const holds: number[][] = []
    for (let n = 0; n < 30; n++) holds.push(await holdOnce(clock, tau, n))
    const refusals = holds.map((sends) => sends.length - 1)
    const lateness = holds.map((sends) => Math.round(sends.at(-1)! - 137))
    console.log(`hold schedule, lead 137–177 ms (${seed}): refusals ${refusals.join('')}, accepted ms past 137: ${lateness.join(' ')}`)
    expect(refusals.slice(10)).toEqual(refusals.slice(10).map(() => 0))
    // Past the longest way in by at most the last step and the release margin.
    for (const late of lateness.slice(10)) expect(late).toBeLessThanOrEqual(40 + 16 + 4)
  })
})

describe('the hold against a Clerk a round trip away (100 ms to Clerk and back)', () => {
  // A refused step costs a round trip before the next send: where the interval's end is nearer
  // than that (the interval a calibration leaves, ~20–40 ms), the hold halves the interval once
  // instead, and sends at the end after a refusal. Left wide, the interval would cost every
  // refresh its width twice (the release at its end, the browser told its low end).
  it.each([
    [40, 'end', 'refused', 2, 2],
    [120, 'end', 'refused', 4, 4],
    [40, 'start', 'accepted', 0, 1],
    [120, 'start', 'accepted', 0, 2],
  ])('an interval of %i ms, the lead at its %s: each half %s (%i refusals), converged within %i holds, then sent within 16 + 4 ms of the lead with no refusal', async (width, where, _, maxRefused, convergedBy) => {
    const clock = createClerkClock()
    const hold = createHold({ clock, now: () => Date.now(), holdMs: 2_000, maxHeld: 10 })
    clock.observe(100, 100 + width)
    const tau = where === 'end' ? 100 + width - 1 : 101
    const holds: number[][] = []
    for (let n = 0; n < 8; n++) holds.push(await holdOnce(clock, tau, n, { hold, roundTripMs: 100 }))
    const refusals = holds.map((sends) => sends.length - 1)
    const lateness = holds.map((sends) => Math.round(sends.at(-1)! - tau))
    console.log(
      `hold schedule, ${width} ms interval, lead at its ${where}: refusals ${refusals.join(' ')}, accepted ms past the lead ${lateness.join(' ')}`,
    )
    const lead = clock.lead()!
    expect(lead.high - lead.low).toBeLessThanOrEqual(16)
    // One refusal a hold at most, each halving what is left: log2(width / 16) holds, rounded up.
    expect(refusals.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(maxRefused)
    expect(Math.max(...refusals)).toBeLessThanOrEqual(1)
    expect(refusals.slice(convergedBy)).toEqual(refusals.slice(convergedBy).map(() => 0))
    for (const late of lateness.slice(convergedBy)) expect(late).toBeLessThanOrEqual(16 + 4)
    // A refused half costs its hold a round trip past the interval's end at most, once.
    for (const [i, sends] of holds.entries()) if (refusals[i]! > 0) expect(sends.at(-1)! - tau).toBeLessThanOrEqual(100 + 4)
  })

  it.each([
    1, 2, 3,
  ])('a way in that varies by up to 40 ms, 100 ms round trip (sequence %i): the halving does not keep refusing', async (seed) => {
    const clock = createClerkClock()
    const hold = createHold({ clock, now: () => Date.now(), holdMs: 2_000, maxHeld: 10 })
    clock.observe(100, 140) // what a calibration leaves
    let i = 0
    const tau = () => 120 + 40 * ((Math.sin(++i * seed) + 1) / 2)
    const holds: number[][] = []
    for (let n = 0; n < 30; n++) holds.push(await holdOnce(clock, tau, n, { hold, roundTripMs: 100 }))
    const refusals = holds.map((sends) => sends.length - 1)
    const lateness = holds.map((sends) => Math.round(sends.at(-1)! - 120))
    console.log(
      `hold schedule, lead 120–160 ms, 100 ms round trip (${seed}): refusals ${refusals.join('')}, accepted ms past 120: ${lateness.join(' ')}`,
    )
    // A refusal re-opens the interval past the longest way in seen: the refusals stop.
    expect(refusals.slice(15)).toEqual(refusals.slice(15).map(() => 0))
    expect(refusals.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(8)
    for (const late of lateness.slice(15)) expect(late).toBeLessThanOrEqual(40 + 16 + 4)
  })

  it('an interval of a second still walks in quarters, each refusal back before the next step', async () => {
    const clock = createClerkClock()
    clock.observe(0, 1_000)
    const sends = await holdOnce(clock, 600, 0, { roundTripMs: 100 })
    expect(sends.map(Math.round)).toEqual([250, 500, 750])
  })
})
