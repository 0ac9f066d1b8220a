import { MAX_SHARED_OFFSET_MS, type HeldToken } from '../core/timing.js'
import { decodeSessionToken, isNewer, type SessionToken } from '../core/token.js'
import { isRefreshErrorCode, RefreshError } from '../errors/RefreshError.js'
import type { TabMessage } from '../tabs/protocol.js'
import { CHANNEL_FUTURE_TOLERANCE_MS } from './delays.js'
import { type AgentState, failedAttempts } from './state.js'
import type { AgentEvent } from './transition.js'

/** What a tab reads, besides its state, to judge a message. */
export interface ReceiverView {
  now: number
  retryMaxDelayMs: number
  /** The session id of the token in the `__session` cookie now, or null. */
  cookieSessionId(): string | null
  /** The app supplies tokens itself and said that other tabs may switch sessions. */
  acceptOtherSessions: boolean
}

/** Offsets of two tabs on one machine measured against one issuer agree to within this. */
const OFFSET_AGREEMENT_MS = 60_000
/** Failures in a row believed from another tab; past it, reports are ignored until a success. */
const MAX_SHARED_ATTEMPT = 30
/** Longest lifetime believed of a token from another tab. */
const MAX_LIFETIME_MS = 86_400_000

/**
 * Reads a validated message from another tab as an event (pure). Messages only ever move a
 * tab towards a newer token, a later retry or the end of the session it holds, and every
 * number in them is bounded: any same-origin script can post here.
 */
export function eventOf(message: Exclude<TabMessage, { type: 'lock' }>, state: AgentState, view: ReceiverView): AgentEvent {
  const ours = state.held?.token.sessionId
  const ignored: AgentEvent = { type: 'ignored' }
  switch (message.type) {
    case 'hello':
      return { type: 'hello' }
    case 'token': {
      // The token held, again: what every tab answers a `hello` with, N − 1 answers in each of
      // N tabs. Decoded once already (decoding is a pure function of the string).
      let token: SessionToken
      try {
        token = message.token === state.held?.token.raw ? state.held.token : decodeSessionToken(message.token)
      } catch {
        return ignored
      }
      const held = trustedHold(token, message.offsetMs, message.offsetHighMs, message.skewKnown, state, view)
      return held ? { type: 'token', held, source: 'tab', from: message.from } : ignored
    }
    case 'refreshing':
      return message.sessionId === ours ? { type: 'remote-refreshing', from: message.from } : ignored
    case 'refresh-failed': {
      if (message.sessionId !== ours || !state.held) return ignored
      // Failures in a row only grow, across tabs: a repeated (or forged) report moves nothing.
      const attempt = Math.min(message.attempt, MAX_SHARED_ATTEMPT)
      if (attempt <= failedAttempts(state)) return ignored
      // Honoured as announced, even past the token's expiry (a real `Retry-After` outlasts it),
      // but never further out than this tab's own longest wait: a forged report delays at most
      // that long, once per failure count.
      const retryAt = Math.min(message.retryAt ?? Infinity, view.now + view.retryMaxDelayMs)
      // A code from the channel is only trusted if it belongs to the closed union.
      const code = isRefreshErrorCode(message.code) && message.code !== 'recovery_required' ? message.code : 'refresh_unavailable'
      const error = new RefreshError(code, `Refresh failed in another tab: ${message.message}`)
      return { type: 'refresh-failed', error, attempt, retryAt, local: false }
    }
    case 'recovery': {
      if (message.sessionId !== ours || message.token !== state.held?.token.raw) return ignored
      const error = new RefreshError('recovery_required', 'The proxy cannot refresh this token; the page must go through Clerk', {
        reason: message.reason,
      })
      return { type: 'recovery', tokenRaw: message.token, error, local: false }
    }
    case 'mode':
      if (!message.refreshAtExpiry || !state.held) return ignored
      // The proxy's `Retry-After` holds in every tab, bounded as a failure report is.
      return {
        type: 'refresh-at-expiry',
        retryAt: Math.min(message.retryAt ?? 0, view.now + view.retryMaxDelayMs),
        holdMs: message.holdMs ?? 0,
        local: false,
      }
    case 'signed-out':
      // Only for the session held: a message naming no session (or another) ends nothing here.
      if (ours === undefined || message.sessionId !== ours) return ignored
      return {
        type: 'session-ended',
        error: message.rejected ? new RefreshError('refresh_rejected', 'The session was ended in another tab') : null,
        broadcast: false,
      }
  }
}

/**
 * The token as this tab will hold it, or null when it must not be believed:
 * - a token of another session only when the cookie holds that session too (or the app said
 *   so): any page of the origin can post, and a token the proxy never saw must not become ours;
 * - a lifetime no longer than a day, and, within one session, the lifetime we already know;
 * - an `iat` no later than now (on this tab's own clock estimate) plus a tolerance;
 * - a clock offset within an hour, and close to the one this tab measured itself.
 */
function trustedHold(
  token: SessionToken,
  offsetMs: number,
  offsetHighMs: number | undefined,
  skewKnown: boolean,
  state: AgentState,
  view: ReceiverView,
): HeldToken | null {
  const held = state.held
  if (token.sessionId === state.endedSessionId) return null
  const sameSession = held !== null && token.sessionId === held.token.sessionId
  if (!sameSession && !view.acceptOtherSessions && view.cookieSessionId() !== token.sessionId) return null
  if (token.lifetimeMs > MAX_LIFETIME_MS) return null
  if (sameSession && Math.abs(token.lifetimeMs - held.token.lifetimeMs) > 1000) return null
  if (Math.abs(offsetMs) > MAX_SHARED_OFFSET_MS) return null
  if (held?.skewKnown && Math.abs(offsetMs - held.offsetMs) > OFFSET_AGREEMENT_MS) return null
  // Judged on this tab's own estimate of the clock when it has one, else on the local clock.
  const reference = held?.skewKnown ? held.offsetMs : 0
  if (token.issuedAt * 1000 + reference > view.now + CHANNEL_FUTURE_TOLERANCE_MS) return null
  if (!isNewer(token, held?.token ?? null) && token.raw !== held?.token.raw) return null
  const high = offsetHighMs !== undefined && offsetHighMs >= offsetMs && offsetHighMs - offsetMs <= 60_000 ? offsetHighMs : undefined
  return { token, offsetMs, ...(high !== undefined ? { offsetHighMs: high } : {}), skewKnown }
}
