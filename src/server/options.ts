import type { Clock } from '../core/clock.js'
import { frontendApiOf, type SessionCookieOptions } from './cookies.js'
import type { ProxyErrorCode } from './errors.js'
import type { EarlyRefresh, RateLimits, UpstreamBudget } from './refresher.js'
import type { RefreshStore } from './store.js'
import type { Upstream } from './upstream.js'
import type { FetchLike } from './verify.js'

export interface RefreshHandlerOptions {
  /** Clerk secret key (`sk_live_…`/`sk_test_…`). Required unless `upstream` is given. */
  secretKey?: string
  /**
   * Clerk publishable key (`pk_live_…`/`pk_test_…`). The refresh cookie `__refresh_<suffix>` and
   * the expected token issuer are derived from it, as Clerk does. Required unless
   * `refreshCookieName` or `upstream` is given.
   */
  publishableKey?: string
  /** Clerk's Backend API; plain http only on loopback. @default 'https://api.clerk.com' */
  apiUrl?: string
  /**
   * This app's origin, e.g. `https://app.example.com`. When set (or with `allowedOrigins`), the
   * request's `Host` is never trusted to say what "same origin" is.
   * @default the origin of the request's `Host` (`X-Forwarded-Host`/`-Proto` with `trustProxy`)
   */
  origin?: string
  /**
   * The origins whose pages may refresh. When given, the only truth (with `origin`).
   * @default [] (only `origin`, or the request's own origin)
   */
  allowedOrigins?: string[]
  /** Name of the refresh cookie. @default `__refresh_<suffix>` from the publishable key */
  refreshCookieName?: string
  /**
   * The session cookies set on success: `__session` and `__session_<suffix>`, as Clerk's browser
   * SDK writes them. `false`: set none. With `format: 'cookie'`, Clerk's own directives are passed on.
   * @default { name: '__session' }
   */
  cookies?: SessionCookieOptions | false
  /** Clerk's response format. @default 'token' */
  format?: 'token' | 'cookie'
  /**
   * Behind a reverse proxy: take the client IP from `X-Forwarded-For` (see `trustedHops`) and the
   * request's own origin from `X-Forwarded-Proto`/`-Host`. Never enable without such a proxy.
   * @default false
   */
  trustProxy?: boolean
  /** With `trustProxy`: how many proxies append to `X-Forwarded-For`. @default 1 */
  trustedHops?: number
  /** Upstream timeout. @default 5_000 */
  timeoutMs?: number
  /** Largest accepted body. @default 8_192 */
  maxBodyBytes?: number
  /** The body must arrive within this time, or the answer is 408. @default 5_000 */
  bodyTimeoutMs?: number
  /** Replaces the call to Clerk, e.g. for another auth backend. */
  upstream?: Upstream
  /** `fetch` used to call Clerk. @default globalThis.fetch */
  fetch?: FetchLike
  /** Receives one event per request; events never contain tokens or keys. */
  onEvent?: (event: RefreshEvent) => void
  /** Clock for expiry checks and limits. @default Date.now */
  clock?: Pick<Clock, 'now'>
  /**
   * Where refresh results (for idempotent replay), rate-limit counters and what was learned about
   * Clerk are kept. Share one (Redis) between instances of a fleet.
   * @default an in-memory store bounded to 10,000 entries and 8 MiB
   */
  store?: RefreshStore
  /** Secret from which the store's hashing and encryption keys are derived. @default `secretKey` */
  storeSecret?: string
  /**
   * Longest one call to `store` may take; past it (or on an error) the proxy answers from its own
   * memory (fails open; after an error, for a second) and says so in `onEvent`.
   * @default 250
   */
  storeTimeoutMs?: number
  /**
   * Calls to Clerk allowed per window, across every instance sharing `store`: past it, 429 with a
   * `Retry-After` spread over the next window, instead of Clerk answering 429 to everyone at once.
   * `false`: no budget.
   * @default { max: 500, windowMs: 10_000 } with a `pk_live_` key (half of Clerk's production quota), 50 otherwise
   */
  upstreamBudget?: UpstreamBudget | false
  /**
   * Clerk's JWT public key (PEM): the expired token is verified without fetching the JWKS. By
   * default the JWKS comes from `{apiUrl}/v1/jwks` with the secret key, cached.
   */
  jwtKey?: string
  /**
   * Verify the expired token's signature, `iss` and `azp` before calling Clerk.
   * @default true when `secretKey` or `jwtKey` is given
   */
  verifyTokens?: boolean
  /** Expected `iss`. @default `https://<frontend API>` from the publishable key */
  issuer?: string
  /**
   * Whether tokens that have not expired are sent to Clerk. `'auto'`: until Clerk refuses one
   * (`session_refresh_session_token_ineligible`), then answer 503 `not_yet_expired` here,
   * without spending Clerk's quota, for an hour. `'never'`: always answer that. `'always'`: ask Clerk.
   * @default 'auto'
   */
  earlyRefresh?: EarlyRefresh
  /** Limits on calls to Clerk (kept in `store`); `false`: none. @default { perSession: 20, perClient: 120, windowMs: 60_000 } */
  rateLimit?: RateLimits | false
  /** @default Math.random */
  random?: () => number
}

export interface RefreshEvent {
  status: number
  code: ProxyErrorCode | 'refreshed'
  /** Clerk's error code, or the proxy's own reason, when there is one. */
  reason?: string
  sessionId?: string
  durationMs: number
  /** This request shared another's upstream call. */
  coalesced?: boolean
  /** This request was answered with an earlier result (a retry after a lost answer). */
  replayed?: boolean
  /** The shared store failed or was slow during this request; this process's memory stood in. */
  store?: 'degraded'
}

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/

/** Start-up checks: a misconfiguration is a clear TypeError now, not a sign-out later. */
export function checkOptions(options: RefreshHandlerOptions): void {
  const fail = (message: string) => {
    throw new TypeError(`createRefreshHandler: ${message}`)
  }
  if (!options.upstream && !options.secretKey) fail('`secretKey` is required (or pass `upstream`)')
  if (!options.publishableKey && !options.refreshCookieName && !options.upstream) {
    fail('`publishableKey` is required: the refresh cookie is `__refresh_<suffix>`, derived from it (or pass `refreshCookieName`)')
  }
  if (options.publishableKey !== undefined && frontendApiOf(options.publishableKey) === null) {
    fail('`publishableKey` is not a Clerk publishable key (pk_test_… or pk_live_…)')
  }
  if (options.apiUrl !== undefined) {
    let url: URL | undefined
    try {
      url = new URL(options.apiUrl)
    } catch {
      fail('`apiUrl` is not a URL')
    }
    if (url!.protocol !== 'https:' && !(url!.protocol === 'http:' && LOOPBACK.test(url!.hostname))) {
      fail('`apiUrl` must be https (plain http only on loopback): the secret key and refresh tokens travel over it')
    }
  }
  for (const origin of [options.origin, ...(options.allowedOrigins ?? [])]) {
    if (origin === undefined) continue
    let parsed: URL | undefined
    try {
      parsed = new URL(origin)
    } catch {
      // reported below
    }
    if (parsed?.origin !== origin) fail(`"${origin}" is not an origin (scheme://host[:port], no path)`)
  }
  if (options.trustedHops !== undefined && !(Number.isInteger(options.trustedHops) && options.trustedHops >= 1)) {
    fail('`trustedHops` must be a whole number ≥ 1')
  }
}
