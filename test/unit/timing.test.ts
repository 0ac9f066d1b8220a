import { describe, expect, it } from 'vitest'
import { backoffDelayMs, refreshMarginMs } from '../../src/core/timing.js'
import { parseRetryAfter } from '../../src/core/transport.js'

describe('refreshMarginMs', () => {
  it('is max(15 s, 25 % of the lifetime) by default', () => {
    expect(refreshMarginMs(60_000)).toBe(15_000)
    expect(refreshMarginMs(120_000)).toBe(30_000)
    expect(refreshMarginMs(3_600_000)).toBe(900_000)
  })
  it('never exceeds half the lifetime, configured or not', () => {
    expect(refreshMarginMs(10_000)).toBe(5_000)
    expect(refreshMarginMs(60_000, 50_000)).toBe(30_000)
    expect(refreshMarginMs(60_000, 5_000)).toBe(5_000)
  })
})

describe('backoffDelayMs', () => {
  const options = (r: number) => ({ baseDelayMs: 1000, maxDelayMs: 30_000, random: () => r })
  it('draws uniformly below base · 2^attempt (full jitter)', () => {
    expect(backoffDelayMs(0, options(0.5))).toBe(500)
    expect(backoffDelayMs(3, options(0.5))).toBe(4000)
    expect(backoffDelayMs(3, options(0.999))).toBe(7992)
  })
  it('is capped at maxDelayMs and never below 10 % of the base', () => {
    expect(backoffDelayMs(20, options(1))).toBe(30_000)
    expect(backoffDelayMs(0, options(0))).toBe(100)
  })
  it('waits at least Retry-After, itself capped', () => {
    expect(backoffDelayMs(0, options(0.5), 20_000)).toBe(20_000)
    expect(backoffDelayMs(0, options(0.5), 600_000)).toBe(30_000)
  })
})

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('7')).toBe(7000)
    expect(parseRetryAfter(new Date(61_000).toUTCString(), 1_000)).toBe(60_000)
    expect(parseRetryAfter('soon')).toBeUndefined()
    expect(parseRetryAfter(null)).toBeUndefined()
  })
})
