import { latestExpiry, localExpiry, plannedRefreshAt, refreshMarginMs, type HeldToken } from '../core/timing.js'
import { DELAYS } from './delays.js'
import type { AnySessionKeeperError } from '../errors/AnySessionKeeperError.js'
import type { RefreshError } from '../errors/RefreshError.js'

/**
 * - `loading`: started, still reading the cookie or asking the other tabs.
 * - `active`: a valid token is held.
 * - `refreshing`: a valid or expired token is held and a refresh is in flight in some tab.
 * - `expired`: the token held has expired and no refresh is in flight (offline, proxy down …).
 * - `signedOut`: no session (never had one, `signOut()`, or the proxy answered 401).
 */
export type SessionStatus = 'loading' | 'active' | 'refreshing' | 'expired' | 'signedOut'

/**
 * Where the current token came from: read at start-up, refreshed by this tab, received from
 * another tab, found in the cookie later (set by the proxy's answer to another tab, or by
 * another library), or handed over with `setToken`.
 */
export type TokenSource = 'startup' | 'refresh' | 'tab' | 'cookie' | 'setToken'

export interface SessionState {
  readonly status: SessionStatus
  /** The session JWT, or null. */
  readonly token: string | null
  /** `sid` of the token. */
  readonly sessionId: string | null
  /** `sub` of the token. */
  readonly userId: string | null
  /** When the token expires, ms since epoch on this machine's clock (skew corrected). */
  readonly expiresAt: number | null
  /** When this tab will next refresh (or retry), ms since epoch on this machine's clock. */
  readonly refreshAt: number | null
  /** False while `navigator.onLine` is false: no refresh is attempted until `online`. */
  readonly online: boolean
  /** The last error, or null after a success. */
  readonly error: AnySessionKeeperError | null
  /** How the current token arrived: which tab refreshed it and when. */
  readonly lastUpdate: { readonly source: TokenSource; readonly tabId: string; readonly at: number } | null
  /** This tab's id on the channel. */
  readonly tabId: string
}

/** Counters for diagnostics and benchmarks; they only grow. */
export interface SessionStats {
  /** Requests this tab sent to the proxy. */
  refreshRequests: number
  /** Of those, how many failed. */
  refreshFailures: number
  /** Tokens adopted from other tabs. */
  tokensFromTabs: number
  /** Channel messages dropped: malformed, unknown, stale or about another session. */
  messagesIgnored: number
  /** Times this tab's one timer fired. */
  timerCallbacks: number
  /** Of those, how many fired more than a second late (sleep, throttling). */
  lateTimers: number
  /** Times this tab took the refresh lock from a holder that did not let go in time. */
  lockSteals: number
}

/** All counters at zero. */
export function newStats(): SessionStats {
  return { refreshRequests: 0, refreshFailures: 0, tokensFromTabs: 0, messagesIgnored: 0, timerCallbacks: 0, lateTimers: 0, lockSteals: 0 }
}

/** Refresh failures in a row, shared by all tabs, and when the next try is allowed. */
export interface Backoff {
  attempt: number
  retryAt: number
  error: RefreshError | null
}

/** What one tab knows, from which the public state and the timer are derived. */
export interface AgentFacts {
  held: HeldToken | null
  signedOut: boolean
  loading: boolean
  /** A refresh is in flight in this tab or, as announced, in another. */
  busy: boolean
  /** The held token contradicts the clock and is due now. */
  suspect: boolean
  /** No retry before this time (0: none pending; Infinity: not until asked). */
  retryAt: number
  configuredMarginMs: number | undefined
  /** The proxy refuses tokens before expiry: refresh once the token has surely expired. */
  atExpiry: boolean
  /** The proxy answered 409 for the token held: never due again. */
  recovery: boolean
}

/**
 * When the held token is due for refresh (local ms), or null without one (or in recovery):
 * `margin` before its expiry, timed on the issuer's clock (see `plannedRefreshAt`); or, when
 * the proxy refuses early refreshes, just after its latest possible expiry on the issuer's clock.
 */
export function dueAt(
  facts: Pick<AgentFacts, 'held' | 'suspect' | 'configuredMarginMs' | 'atExpiry' | 'recovery'>,
  now: number,
): number | null {
  const { held } = facts
  if (held === null || facts.recovery) return null
  if (facts.suspect) return now
  if (facts.atExpiry) return latestExpiry(held) + DELAYS.atExpiryGraceMs
  return plannedRefreshAt(held, refreshMarginMs(held.token.lifetimeMs, facts.configuredMarginMs))
}

/** `status`, `expiresAt` and `refreshAt` (Infinity when no retry is planned) at `now`. */
export function deriveView(facts: AgentFacts, now: number) {
  const { held, signedOut, loading, busy } = facts
  const expiresAt = held ? localExpiry(held) : null
  const due = signedOut ? null : dueAt(facts, now)
  const refreshAt = due === null ? null : Math.max(due, facts.retryAt)
  // Refreshing at expiry, the token is (conservatively) past its expiry for a moment before the
  // planned refresh goes out: that moment is part of the refresh, not an outage.
  const planned = facts.atExpiry && refreshAt !== null && refreshAt - now <= DELAYS.atExpiryPlannedMs
  const status: SessionStatus = signedOut
    ? 'signedOut'
    : held === null
      ? loading
        ? 'loading'
        : 'signedOut'
      : busy || (planned && now >= expiresAt!)
        ? 'refreshing'
        : now < expiresAt!
          ? 'active'
          : 'expired'
  return { status, expiresAt, refreshAt }
}

/** What a binding shows before a keeper has a state of its own, e.g. during server rendering. */
export const LOADING_STATE: SessionState = Object.freeze({
  status: 'loading',
  token: null,
  sessionId: null,
  userId: null,
  expiresAt: null,
  refreshAt: null,
  online: true,
  error: null,
  lastUpdate: null,
  tabId: '',
})
