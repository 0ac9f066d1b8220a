import type { Clock } from '../core/clock.js'
import type { RefreshError } from '../errors/RefreshError.js'
import type { Environment } from '../core/environment.js'
import type { FetchLike } from '../core/transport.js'
import type { ChannelFactory } from '../tabs/channel.js'
import type { LockManagerLike } from '../tabs/locks.js'

export interface SessionKeeperOptions {
  /**
   * URL of the app's refresh proxy (`session-keeper/server`), same origin.
   * @example '/api/session/refresh'
   */
  endpoint: string
  /**
   * Cookie holding the session JWT at start-up; also expired by `signOut()`.
   * @default '__session'
   */
  cookieName?: string
  /**
   * A token the app already has, or a function returning one. When given, the cookie is not read.
   * @default undefined
   */
  initialToken?: string | null | (() => string | null | undefined)
  /**
   * How long before expiry to refresh.
   * @default max(15 000, 25 % of the token's lifetime), and never more than half the lifetime
   */
  refreshMarginMs?: number
  /**
   * Timeout of one request to the proxy.
   * @default 10_000
   */
  requestTimeoutMs?: number
  /**
   * First retry delay ceiling; full jitter, doubling per failure.
   * @default 1_000
   */
  retryBaseDelayMs?: number
  /**
   * Largest delay between retries, and the longest `Retry-After` honoured (no tab sends before
   * it, even when it outlasts the token). A retry time announced by another tab holds this one
   * back this long at most.
   * @default 30_000
   */
  retryMaxDelayMs?: number
  /**
   * Longest `getToken()` waits for a valid token before throwing `TokenUnavailableError`.
   * @default 10_000
   */
  getTokenTimeoutMs?: number
  /**
   * Longest a tab waits for the refresh lock before taking it from a frozen holder. It is
   * shortened so that the token cannot expire while waiting.
   * @default requestTimeoutMs + 2_000
   */
  lockTimeoutMs?: number
  /**
   * After another tab's refresh ends, how long to wait for its answer on the channel before
   * concluding that it died and refreshing here.
   * @default 300
   */
  handoffWaitMs?: number
  /**
   * At start-up without a usable token, how long to wait for other tabs to share theirs.
   * @default 100
   */
  helloWaitMs?: number
  /**
   * Scope of the cross-tab channel and lock; tabs with the same name share one session.
   * @default derived from `endpoint` and `cookieName`
   */
  channelName?: string
  /**
   * Extra headers for the refresh request (e.g. a CSRF token).
   * @default {}
   */
  headers?: Record<string, string>
  /** `fetch` used for refreshes and `keeper.fetch`. @default globalThis.fetch */
  fetch?: FetchLike
  /** Time and timers. @default the globals */
  clock?: Clock
  /** Source of randomness for backoff and lock-wait jitter (tab ids use their own). @default Math.random */
  random?: () => number
  /**
   * Lock manager; `null` forces the message-based fallback.
   * @default navigator.locks when available
   */
  locks?: LockManagerLike | null
  /** Opens the cross-tab channel; return null for none. @default BroadcastChannel */
  channel?: ChannelFactory
  /** Page visibility, focus, online state, cookies and events. @default the browser's */
  environment?: Environment
  /**
   * Called in every tab when the proxy answers 409 `recovery_required` for the token held: this
   * browser cannot refresh through the proxy, the session may be alive, and the page should go
   * through Clerk's handshake (usually a reload) before the token expires. Also dispatched on
   * `window` as `session-keeper:recovery`.
   * @example onRecoveryRequired: () => location.reload()
   */
  onRecoveryRequired?: (error: RefreshError) => void
  /**
   * Origins besides the page's own to which `keeper.fetch()` attaches the token (e.g. your API on
   * another subdomain). Requests elsewhere are sent without it.
   * @default []
   */
  authorizedOrigins?: string[]
  /**
   * Accept a token of another session from another tab without the `__session` cookie agreeing.
   * Only for apps that supply tokens themselves (`initialToken`, `setToken`) and never read the
   * cookie: any script of the origin can post on the channel.
   * @default false
   */
  acceptOtherSessionsFromTabs?: boolean
}

export type ResolvedOptions = Required<Omit<SessionKeeperOptions, 'initialToken' | 'refreshMarginMs' | 'locks' | 'onRecoveryRequired'>> &
  Pick<SessionKeeperOptions, 'initialToken' | 'refreshMarginMs' | 'locks' | 'onRecoveryRequired'>

/** The `__session` cookie's value now, or null (none, or the app supplies tokens itself). */
export function cookieValue(options: ResolvedOptions): string | null {
  return options.initialToken === undefined ? options.environment.readCookie(options.cookieName) : null
}
