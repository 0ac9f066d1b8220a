import {
  backoffDelayMs,
  fromRefresh,
  fromUnmeasured,
  withClerkTime,
  withServerDate,
  type BackoffOptions,
  type HeldToken,
} from '../core/timing.js'
import { atExpiryDue } from './state.js'
import { MAX_HOLD_MS, type RefreshAnswer } from '../core/transport.js'
import { RefreshError } from '../errors/RefreshError.js'
import type { AgentEvent } from './transition.js'

export interface AttemptContext {
  /** The token the request carried. */
  current: HeldToken
  sentAt: number
  receivedAt: number
  tabId: string
  /** Failures in a row so far (-1: none). */
  previousAttempt: number
  backoff: BackoffOptions
}

/** A token whose issue time this request did not witness: the clock as measured before, if it was. */
function unmeasured(token: RefreshAnswer['token'], ctx: AttemptContext): HeldToken & { suspect?: boolean } {
  const { current } = ctx
  if (current.skewKnown)
    return {
      token,
      offsetMs: current.offsetMs,
      ...(current.offsetHighMs !== undefined ? { offsetHighMs: current.offsetHighMs } : {}),
      skewKnown: true,
    }
  return fromUnmeasured(token, ctx.receivedAt)
}

/** Until the proxy says otherwise, a refused early refresh is retried this soon at the latest. */
const NOT_YET_EXPIRED_DEFAULT_MS = 1_000

/**
 * What one answer of the proxy means, as events (pure): a token to adopt; a sign-out (401
 * `session_ended` only); recovery (409, or any other 401); a switch to refreshing at expiry
 * (503 `not_yet_expired`); or a backoff, which still measures the clock from the proxy's `Date`.
 */
export function outcomeOf(answer: RefreshAnswer | RefreshError, ctx: AttemptContext): AgentEvent[] {
  if (!(answer instanceof RefreshError)) {
    const same = answer.token.raw === ctx.current.token.raw
    // A replayed or echoed token was not issued during this request: it says nothing of the clock.
    const measured =
      answer.replayed || same
        ? unmeasured(answer.token, ctx)
        : fromRefresh(answer.token, ctx.sentAt, ctx.receivedAt, ctx.current.skewKnown ? ctx.current : null)
    // The proxy's word on Clerk's clock, when it gave one: the token's earliest and latest expiry, closer.
    const held = withClerkTime(measured, ctx.sentAt, ctx.receivedAt, { atMost: answer.clerkTime, atLeast: answer.clerkTimeMin })
    const events: AgentEvent[] = [
      { type: 'token', held, source: 'refresh', from: ctx.tabId, suspect: 'suspect' in held && held.suspect === true },
    ]
    // The token sent, answered back: nothing newer to be had yet. No error, and no tight loop.
    if (same) {
      const attempt = ctx.previousAttempt + 1
      events.push({ type: 'no-progress', attempt, retryAt: ctx.receivedAt + backoffDelayMs(attempt, ctx.backoff) })
    }
    return events
  }
  const error = answer
  if (error.code === 'refresh_rejected') return [{ type: 'session-ended', error, broadcast: true }]
  if (error.code === 'recovery_required') return [{ type: 'recovery', tokenRaw: ctx.current.token.raw, error, local: true }]
  const events: AgentEvent[] = []
  // A failed refresh still tells the time: an unmeasured token gets a real deadline (the proxy's
  // `Date`, whole seconds, so up to a second early), and a proxy that knows Clerk's clock says
  // when it stood (with its 503 `not_yet_expired`): the earliest and the latest expiry move to
  // within a few ms of the truth.
  let measured = ctx.current
  if (!measured.skewKnown && error.serverDate !== undefined) measured = withServerDate(measured, ctx.sentAt, error.serverDate)
  if (measured.skewKnown)
    measured = withClerkTime(measured, ctx.sentAt, ctx.receivedAt, { atMost: error.clerkTime, atLeast: error.clerkTimeMin })
  if (measured !== ctx.current) events.push({ type: 'clock-measured', held: measured })
  if (error.code === 'refresh_not_yet_expired') {
    // `Retry-After` is whole seconds, rounded up: up to a second late. The token's own latest
    // expiry is the better time, unless the proxy's clock says it is more than a second off.
    // A proxy that holds requests (`Session-Keeper-Hold`) is asked half its window earlier.
    const holdMs = Math.min(error.holdMs ?? 0, MAX_HOLD_MS)
    const wait = Math.min(error.retryAfterMs ?? NOT_YET_EXPIRED_DEFAULT_MS, ctx.current.token.lifetimeMs)
    const retryAt = Math.max(atExpiryDue(measured, holdMs), ctx.receivedAt + wait - 1_000 - holdMs / 2)
    events.push({ type: 'refresh-at-expiry', retryAt, holdMs, local: true })
    return events
  }
  const attempt = ctx.previousAttempt + 1
  const retryAt = error.retryable ? ctx.receivedAt + backoffDelayMs(attempt, ctx.backoff, error.retryAfterMs) : Infinity
  events.push({ type: 'refresh-failed', error, attempt, retryAt, local: true })
  return events
}
