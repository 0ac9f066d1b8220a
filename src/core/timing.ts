import type { SessionToken } from './token.js'

/**
 * How long before expiry to refresh: by default max(15 s, 25 % of the lifetime), and never more
 * than half the lifetime, whatever was configured (a 10 s token is refreshed 5 s early).
 */
export function refreshMarginMs(lifetimeMs: number, configuredMs?: number): number {
  const wanted = configuredMs ?? Math.max(15_000, lifetimeMs * 0.25)
  return Math.max(0, Math.min(wanted, lifetimeMs / 2))
}

/**
 * A token held by this tab with the estimate of where its expiry falls on this machine's clock.
 * `offsetMs` is (local clock − issuer clock); `skewKnown` says whether it was measured.
 */
export interface HeldToken {
  readonly token: SessionToken
  readonly offsetMs: number
  readonly skewKnown: boolean
}

/** Local time (ms) at which the token stops being valid. */
export function localExpiry(held: HeldToken): number {
  return held.token.expiresAt * 1000 + held.offsetMs
}

/** Clerk accepts tokens issued up to 5 s in its future; a local clock slower than that shows. */
const SLOW_CLOCK_TOLERANCE_MS = 5_000

/**
 * A token that arrived just now from the proxy: it was issued after `requestSentAt`, so the
 * offset is at least `requestSentAt − iat`. One more second covers `iat`'s truncation to
 * seconds, so the estimate errs towards an earlier expiry, never a later one.
 */
export function fromRefresh(token: SessionToken, requestSentAt: number): HeldToken {
  return { token, offsetMs: requestSentAt - token.issuedAt * 1000 - 1000, skewKnown: true }
}

/**
 * Re-measures a held token's offset from the proxy's `Date` header (whole seconds, stamped
 * between sending and receiving): the lowest offset consistent with it, so expiry errs early.
 */
export function withServerDate(held: HeldToken, requestSentAt: number, serverDate: number): HeldToken {
  return { token: held.token, offsetMs: requestSentAt - serverDate - 1000, skewKnown: true }
}

/**
 * A token found in a cookie or handed over by the app, with no measurement of the clock. The
 * local clock is trusted unless the token contradicts it: issued in our future (clock slow)
 * or older than its own lifetime while the app still holds it (clock fast). Then the token is
 * treated as due now, so one refresh measures the real offset.
 */
export function fromUnmeasured(token: SessionToken, now: number): HeldToken & { suspect: boolean } {
  const ageMs = now - token.issuedAt * 1000
  const suspect = ageMs < -SLOW_CLOCK_TOLERANCE_MS || ageMs > token.lifetimeMs
  return { token, offsetMs: 0, skewKnown: false, suspect }
}

export interface BackoffOptions {
  baseDelayMs: number
  maxDelayMs: number
  random: () => number
}

/**
 * Exponential backoff with full jitter: uniform in [0, min(max, base · 2^attempt)], at least
 * 10 % of the base so a burst of failures never retries in a tight loop. `Retry-After` is a
 * floor, itself capped at `maxDelayMs`.
 */
export function backoffDelayMs(attempt: number, options: BackoffOptions, retryAfterMs?: number): number {
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** Math.min(attempt, 30))
  const jittered = Math.max(options.baseDelayMs * 0.1, options.random() * ceiling)
  const floor = retryAfterMs === undefined ? 0 : Math.min(retryAfterMs, options.maxDelayMs)
  return Math.round(Math.max(jittered, floor))
}
