// @vitest-environment node
/**
 * Finding where Clerk's second turns (`calibrate.ts`), in fake time against a Clerk whose lead is
 * known here and not to the proxy: how close the low end of the lead gets, that it is never
 * above the lead (the browser is told Clerk's clock reads at most `t − low`), and what it costs.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createCalibration, type ClerkPing } from '../../src/server/calibrate.js'
import { createClerkClock } from '../../src/server/clerkClock.js'
import { createBudgetShare } from '../../src/server/limits.js'
import type { StoreSecrets } from '../../src/server/secrets.js'
import { createMemoryStore } from '../../src/server/store.js'

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: Date.UTC(2026, 11, 1, 12) + 317 })
})
afterEach(() => {
  vi.useRealTimers()
})

/**
 * Clerk with lead `tau` (a call sent at `t` reaches it when its clock reads `t − tau`), `Date`
 * stamped on arrival, answered `back` ms after; `jitter(i)` ms more on the way in of call `i`.
 */
function clerk(tau: number, back: number, jitter: (i: number) => number = () => 0) {
  let calls = 0
  const ping: ClerkPing = async () => {
    const i = calls++
    const sentAt = Date.now()
    const arrivedAt = sentAt + jitter(i)
    const dateMs = Math.floor((arrivedAt - tau) / 1000) * 1000
    await new Promise((resolve) => setTimeout(resolve, jitter(i) + back))
    return { sentAt, receivedAt: Date.now(), dateMs }
  }
  return { ping, calls: () => calls }
}

/** What one refresh call tells first: `Date` of a call sent now, 100 ms there and back. */
function firstCall(tau: number) {
  const clock = createClerkClock()
  const sentAt = Date.now()
  clock.observeStamp(sentAt, sentAt + 100, Math.floor((sentAt - tau) / 1000) * 1000)
  return clock
}

/** Keys in the clear: WebCrypto's HMAC resolves on a thread of its own, outside the fake time. */
const plainSecrets = { hash: async (...parts: string[]) => parts.join(':') } as StoreSecrets

describe('calibrating the lead against Clerk’s second', () => {
  it.each([-480, 0, 137, 555, 990])('lead %i ms: 30 calls, and the low end ends within 10 ms below it', async (tau) => {
    const clock = firstCall(tau)
    const before = clock.lead()!
    expect(before.high - before.low).toBeGreaterThan(1_000) // a second and the round trip
    const fake = clerk(tau, 50)
    const calibration = createCalibration(clock, fake.ping, () => Date.now())
    calibration.start()
    await vi.advanceTimersByTimeAsync(5_000)
    expect(calibration.running).toBeNull()
    expect(fake.calls()).toBe(30)
    const lead = clock.lead()!
    expect(lead.low).toBeLessThan(tau) // proven: never above the lead
    expect(tau - lead.low).toBeLessThanOrEqual(10)
    expect(lead.high).toBeGreaterThanOrEqual(tau)
    // What the browser is told: Clerk's clock reads at most this, and it is never less than it does.
    const t = Date.now()
    expect(clock.clerkTimeAtMost(t)!).toBeGreaterThanOrEqual(t - tau)
    expect(clock.clerkTimeAtMost(t)! - (t - tau)).toBeLessThanOrEqual(10)
  })

  it.each([
    -480, 137, 990,
  ])('lead %i ms: after its first round (1.1 s and the way back), the low end is within 50 ms below it', async (tau) => {
    const clock = firstCall(tau)
    const calibration = createCalibration(clock, clerk(tau, 50).ping, () => Date.now())
    calibration.start()
    await vi.advanceTimersByTimeAsync(1_020 + 50 + 10) // the last call of the first round answered; none of the second yet
    const lead = clock.lead()!
    expect(lead.low).toBeLessThan(tau)
    expect(tau - lead.low).toBeLessThanOrEqual(50)
  })

  it('a way in that varies by up to 15 ms: the low end within the step and the jitter', async () => {
    const tau = 137
    const clock = firstCall(tau)
    const fake = clerk(tau, 50, (i) => (i * 7) % 16)
    const calibration = createCalibration(clock, fake.ping, () => Date.now())
    calibration.start()
    await vi.advanceTimersByTimeAsync(5_000)
    const lead = clock.lead()!
    // A call that took longer on the way in reached Clerk later: its lead was smaller.
    expect(lead.low).toBeLessThan(tau)
    expect(tau - lead.low).toBeLessThanOrEqual(10 + 15)
  })

  it('runs once per process; one that failed (no answer) is tried again a minute later, not before', async () => {
    const clock = firstCall(137)
    let failing = true
    const fake = clerk(137, 50)
    const ping: ClerkPing = () => (failing ? Promise.reject(new TypeError('fetch failed')) : fake.ping())
    const calibration = createCalibration(clock, ping, () => Date.now())
    calibration.start()
    await vi.advanceTimersByTimeAsync(5_000)
    expect(fake.calls()).toBe(0)
    failing = false
    calibration.start()
    await vi.advanceTimersByTimeAsync(5_000)
    expect(fake.calls()).toBe(0) // within the minute
    await vi.advanceTimersByTimeAsync(60_000)
    calibration.start()
    calibration.start() // one runs: the second start joins nothing new
    await vi.advanceTimersByTimeAsync(5_000)
    expect(fake.calls()).toBe(30)
    calibration.start()
    await vi.advanceTimersByTimeAsync(5_000)
    expect(fake.calls()).toBe(30) // done: never again
  })

  it("takes its calls out of the app's upstream budget, three quarters of a window at most: a fleet starting at once does not spend Clerk's quota on the clock", async () => {
    const budget = { max: 40, windowMs: 10_000 }
    const store = createMemoryStore({ now: () => Date.now() })
    const share = createBudgetShare({ secrets: plainSecrets, now: () => Date.now(), budget })
    // Three instances starting together, one store: their calibrations share the window's half.
    const fakes = [clerk(137, 50), clerk(137, 50), clerk(137, 50)]
    for (const fake of fakes) createCalibration(firstCall(137), fake.ping, () => Date.now()).start(() => share(store))
    await vi.advanceTimersByTimeAsync(5_000)
    const calls = fakes.map((fake) => fake.calls())
    expect(calls.reduce((a, b) => a + b, 0)).toBe(budget.max * 0.75)
    // Counted like refreshes: the window's counter holds them, so refreshes have the last quarter.
    const all = await Promise.all(Array.from({ length: budget.max }, () => share(store)))
    expect(all.every((allowed) => !allowed)).toBe(true)
    // Without a budget, nothing is held back: 30 calls.
    const free = clerk(137, 50)
    const unbudgeted = createBudgetShare({ secrets: plainSecrets, now: () => Date.now(), budget: null })
    createCalibration(firstCall(137), free.ping, () => Date.now()).start(() => unbudgeted(store))
    await vi.advanceTimersByTimeAsync(5_000)
    expect(free.calls()).toBe(30)
  })

  it('a call the budget refuses is not sent; a round with none answered fails the calibration, tried again a minute later', async () => {
    const clock = firstCall(137)
    const fake = clerk(137, 50)
    let left = 0
    const calibration = createCalibration(clock, fake.ping, () => Date.now())
    calibration.start(async () => left-- > 0)
    await vi.advanceTimersByTimeAsync(5_000)
    expect(fake.calls()).toBe(0)
    expect(calibration.running).toBeNull()
    left = 1_000
    calibration.start(async () => left-- > 0)
    await vi.advanceTimersByTimeAsync(5_000)
    expect(fake.calls()).toBe(0) // failed within the minute
    await vi.advanceTimersByTimeAsync(60_000)
    calibration.start(async () => left-- > 0)
    await vi.advanceTimersByTimeAsync(5_000)
    expect(fake.calls()).toBe(30)
  })
})
