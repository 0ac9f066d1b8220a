import { latestExpiry, localExpiry, plannedRefreshAt, refreshMarginMs, type HeldToken } from '../core/timing.js'
import { AT_EXPIRY_GRACE_MS, AT_EXPIRY_PLANNED_MS, MIN_VALIDITY_MS } from './delays.js'
import type { AnySessionKeeperError } from '../errors/AnySessionKeeperError.js'
import type { RefreshError } from '../errors/RefreshError.js'

/**
 * - `loading`: started, still reading the cookie or asking the other tabs.
 * - `active`: a valid token is held.
 * - `refreshing`: a valid or expired token is held and a refresh is in flight in some tab (or,
 *   when the proxy refuses early refreshes, due within moments of the token's expiry).
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
  /**
   * The session JWT while it is valid (on this machine's clock, skew corrected), else null: an
   * expired token is never offered as the current one. `getToken()` is what to send with a request.
   */
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

/**
 * Everything one tab knows, from which its public state and its timer are derived. Written only
 * by `transition` (transition.ts); read by everyone.
 */
export interface AgentState {
  readonly running: boolean
  /** Started, still reading the cookie or asking the other tabs: no refresh yet. */
  readonly loading: boolean
  readonly held: HeldToken | null
  /** Where the held token came from: a token learned from the channel yields to our own answer. */
  readonly heldSource: TokenSource | null
  readonly signedOut: boolean
  /** A token found without a clock measurement that contradicts the local clock: due now. */
  readonly suspect: boolean
  /** The session that ended here: its tokens are never adopted again (late answers). */
  readonly endedSessionId: string | null
  readonly backoff: Backoff | null
  /** A refresh run (lock, then request) is under way in this tab. */
  readonly refreshing: boolean
  /**
   * The page is going into the back/forward cache or away (pagehide): no refresh starts here until
   * it shows again, so that a frozen page holds no lock and no request the other tabs would wait on.
   */
  readonly away: boolean
  /** Another tab announced a refresh and has not reported its outcome yet. */
  readonly remote: { readonly from: string; readonly since: number } | null
  /** The proxy answered 409 for this token: nobody asks for it again. */
  readonly recovery: { readonly tokenRaw: string; readonly error: RefreshError } | null
  /** The proxy refuses tokens before expiry: refresh at expiry instead. */
  readonly atExpiry: boolean
  /** Refreshing at expiry: how long before expiry the proxy holds a request (0: it does not). */
  readonly holdMs: number
  /** The last error, or null after a success. */
  readonly error: AnySessionKeeperError | null
  readonly lastUpdate: SessionState['lastUpdate']
  readonly stats: Readonly<SessionStats>
}

export const INITIAL_AGENT_STATE: AgentState = {
  running: false,
  loading: true,
  held: null,
  heldSource: null,
  signedOut: false,
  suspect: false,
  endedSessionId: null,
  backoff: null,
  refreshing: false,
  away: false,
  remote: null,
  recovery: null,
  atExpiry: false,
  holdMs: 0,
  error: null,
  lastUpdate: null,
  stats: newStats(),
}

/**
 * Refreshing at expiry: just after the token's latest possible expiry on the issuer's clock; to a
 * proxy that holds requests until then, half its hold window earlier, so that the hold (not a
 * second request) covers the uncertainty of this tab's clock. (Three quarters would cover a real
 * expiry at the early end of a second's uncertainty too, but while the proxy's own estimate of
 * Clerk's clock is still a second wide, such a request falls outside its window: a 503 and one
 * more request, seen once in WebKit.)
 */
export function atExpiryDue(held: HeldToken, holdMs: number): number {
  return latestExpiry(held) + AT_EXPIRY_GRACE_MS - holdMs / 2
}

/** The 409 that stopped refreshes of the token held, if it did. */
export function recoveryError(state: AgentState): RefreshError | null {
  return state.recovery && state.recovery.tokenRaw === state.held?.token.raw ? state.recovery.error : null
}

/** Failures in a row so far (-1: none). */
export const failedAttempts = (state: AgentState): number => state.backoff?.attempt ?? -1

/** Retries are not allowed before this time (0: none pending; Infinity: not until asked). */
export const retryAt = (state: AgentState): number => state.backoff?.retryAt ?? 0

/** A token that will still be valid when the caller uses it (a few hundred ms from now). */
export function isUsable(state: AgentState, now: number): boolean {
  return state.held !== null && now < localExpiry(state.held) - MIN_VALIDITY_MS
}

/**
 * When the held token is due for refresh (local ms), or null without one (or in recovery):
 * `margin` before its expiry, timed on the issuer's clock (see `plannedRefreshAt`); or, when
 * the proxy refuses early refreshes, just after its latest possible expiry on the issuer's clock.
 */
export function dueAt(state: AgentState, now: number, marginMs: number | undefined): number | null {
  const { held } = state
  if (held === null || state.signedOut || recoveryError(state)) return null
  if (state.suspect) return now
  if (state.atExpiry) return atExpiryDue(held, state.holdMs)
  return plannedRefreshAt(held, refreshMarginMs(held.token.lifetimeMs, marginMs))
}

export function isDue(state: AgentState, now: number, marginMs: number | undefined): boolean {
  const due = dueAt(state, now, marginMs)
  return due !== null && now >= due
}

/**
 * `status`, `expiresAt` and `refreshAt` (null without a token; Infinity when no retry is planned)
 * at `now`. Refreshing at
 * expiry, the token is (conservatively) past its expiry for a moment before the planned refresh
 * goes out: that moment is part of the refresh, not an outage.
 */
export function deriveView(state: AgentState, now: number, marginMs: number | undefined) {
  const { held, signedOut, loading } = state
  const busy = state.refreshing || state.remote !== null
  const expiresAt = held ? localExpiry(held) : null
  const due = dueAt(state, now, marginMs)
  const refreshAt = due === null ? null : Math.max(due, retryAt(state))
  const planned = state.atExpiry && refreshAt !== null && refreshAt - now <= AT_EXPIRY_PLANNED_MS
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

/** The public state of a tab: what `getState()` answers and subscribers receive. */
export function publicState(state: AgentState, now: number, marginMs: number | undefined, online: boolean, tabId: string): SessionState {
  const { status, expiresAt, refreshAt } = deriveView(state, now, marginMs)
  const token = state.held?.token
  return {
    status,
    token: token && now < expiresAt! ? token.raw : null,
    sessionId: token?.sessionId ?? null,
    userId: token?.userId ?? null,
    expiresAt,
    refreshAt: refreshAt === Infinity ? null : refreshAt,
    online,
    error: state.error,
    lastUpdate: state.lastUpdate,
    tabId,
  }
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
