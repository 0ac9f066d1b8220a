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
 * The clock offset (local clock − issuer clock) lies in [`offsetMs`, `offsetHighMs`]; `skewKnown`
 * says whether it was measured. The low end is used for validity, so expiry errs early.
 */
export interface HeldToken {
  readonly token: SessionToken
  readonly offsetMs: number
  /** Upper end of the offset interval, when measured. */
  readonly offsetHighMs?: number
  readonly skewKnown: boolean
}

/** Local time (ms) at which the token stops being valid, at the earliest. */
export function localExpiry(held: HeldToken): number {
  return held.token.expiresAt * 1000 + held.offsetMs
}

/** Local time (ms) by which the token has surely expired on the issuer's clock. */
export function latestExpiry(held: HeldToken): number {
  return held.token.expiresAt * 1000 + (held.offsetHighMs ?? held.offsetMs + 1000)
}

/** Clerk accepts tokens issued up to 5 s in its future; a local clock slower than that shows. */
const SLOW_CLOCK_TOLERANCE_MS = 5_000

/**
 * A token that arrived just now from the proxy. It was issued between `sentAt` and `receivedAt`
 * (local) and within the second `iat` (issuer), so the offset lies in
 * [sentAt − (iat + 1) s, receivedAt − iat s]. Intersected with the interval measured before
 * (`previous`), it narrows with every refresh, while its low end never passes the real offset:
 * the token is never held past its real expiry. Disjoint intervals mean the clock jumped: the
 * new measurement alone counts.
 */
export function fromRefresh(token: SessionToken, sentAt: number, receivedAt = sentAt, previous?: HeldToken | null): HeldToken {
  let low = sentAt - token.issuedAt * 1000 - 1000
  let high = receivedAt - token.issuedAt * 1000
  if (previous?.skewKnown && previous.offsetHighMs !== undefined) {
    const narrowedLow = Math.max(low, previous.offsetMs)
    const narrowedHigh = Math.min(high, previous.offsetHighMs)
    if (narrowedLow <= narrowedHigh) [low, high] = [narrowedLow, narrowedHigh]
  }
  return { token, offsetMs: low, offsetHighMs: high, skewKnown: true }
}

/** An offset interval narrower than this is as good as measured; no more probing. */
const CONVERGED_MS = 50
/** Sent this long after the issuer's second turns, so that the new token's `iat` is that second. */
const AFTER_BOUNDARY_MS = 10

/**
 * When to refresh a token `marginMs` before its expiry (local ms).
 *
 * Without a measured clock offset: `marginMs` before the earliest expiry. With one, the request
 * is timed on the issuer's clock, at the first whole second from `exp − margin`: `iat` is
 * truncated to seconds, so a token issued at x.97 s loses 0.97 s of its life, and one issued
 * just after a second turns loses nothing. While the offset interval is still wide, the request
 * goes out when the second turns if the offset were the interval's middle: the new `iat` then
 * says on which side the offset lies, halving the interval each refresh. Never later than half
 * the margin past the earliest-expiry plan, and only where the margin is at least 2 s.
 */
export function plannedRefreshAt(held: HeldToken, marginMs: number): number {
  const early = localExpiry(held) - marginMs
  if (!held.skewKnown || held.offsetHighMs === undefined || marginMs < 2_000) return early
  const boundary = Math.ceil((held.token.expiresAt * 1000 - marginMs) / 1000) * 1000
  const width = held.offsetHighMs - held.offsetMs
  const planned = width <= CONVERGED_MS ? boundary + held.offsetHighMs + AFTER_BOUNDARY_MS : boundary + held.offsetMs + width / 2
  return Math.round(Math.min(planned, early + marginMs / 2))
}

/**
 * Re-measures a held token's offset from the proxy's `Date` header (whole seconds, stamped
 * between sending and receiving): the lowest offset consistent with it, so expiry errs early.
 */
export function withServerDate(held: HeldToken, requestSentAt: number, serverDate: number): HeldToken {
  return { token: held.token, offsetMs: requestSentAt - serverDate - 1000, skewKnown: true }
}

/** The proxy's word on Clerk's clock around one request (epoch ms on Clerk's clock). */
export interface ClerkTimeWord {
  /** Clerk's clock read at most this when the request, sent at `sentAt`, arrived. */
  atMost?: number | undefined
  /** Clerk's clock read at least this when the answer, received at `receivedAt`, left. */
  atLeast?: number | undefined
}

/**
 * Narrows a held token's offset with the proxy's word on Clerk's clock: the offset is at least
 * `sentAt − atMost` and at most `receivedAt − atLeast`. The low end (validity) only ever rises,
 * the high end (when the token has surely expired) only ever falls, and a word that would leave
 * no interval is not taken.
 */
export function withClerkTime(held: HeldToken, sentAt: number, receivedAt: number, word: ClerkTimeWord): HeldToken {
  const low = Math.max(held.offsetMs, word.atMost === undefined ? -Infinity : sentAt - word.atMost)
  const high = Math.min(held.offsetHighMs ?? Infinity, word.atLeast === undefined ? Infinity : receivedAt - word.atLeast)
  if (low > high || (low === held.offsetMs && high === (held.offsetHighMs ?? Infinity))) return held
  return { ...held, offsetMs: low, offsetHighMs: Number.isFinite(high) ? high : undefined }
}

/** Largest clock offset believed from another tab; a larger one is not trusted (±1 hour). */
export const MAX_SHARED_OFFSET_MS = 3_600_000

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
