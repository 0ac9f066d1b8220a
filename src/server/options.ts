import type { Clock } from '../core/clock.js'
import type { FetchLike } from '../core/transport.js'
import type { SessionCookieOptions } from './cookies.js'
import type { EarlyRefresh } from './earlyRefresh.js'
import type { ProxyErrorCode } from './errors.js'
import type { RateLimits, UpstreamBudget } from './limits.js'
import type { RefreshStore } from './store.js'
import type { Upstream } from './upstream.js'

/**
 * The options of `createRefreshHandler`. Their defaults are applied in one place,
 * `resolveOptions.ts` (`DEFAULTS`); the README's "Proxy options" table lists every one of them
 * (a test checks it against `OPTION_NAMES`).
 */
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
  /**
   * Name of the refresh cookie, for a backend other than Clerk (with `upstream`) or a cookie
   * renamed in front of the app. Clerk's SDK never reads an unsuffixed `__refresh`.
   * @default `__refresh_<suffix>` from the publishable key
   */
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
  /**
   * Longest one call to Clerk may take (the refresh, and the fetch of its signing keys); past it
   * the answer is 504 `upstream_timeout`. A claim on a refresh lives 1 s longer.
   * @default 5_000
   */
  timeoutMs?: number
  /** Largest accepted body; a larger one is 413 (a larger `Content-Length` is refused unread). @default 8_192 */
  maxBodyBytes?: number
  /** The body must arrive within this time, or the answer is 408. @default 5_000 */
  bodyTimeoutMs?: number
  /** Replaces the call to Clerk, e.g. for another auth backend. */
  upstream?: Upstream
  /** `fetch` used to call Clerk (the refresh and the JWKS). @default globalThis.fetch, looked up at each call */
  fetch?: FetchLike
  /** Receives one event per request; events never contain tokens or keys. */
  onEvent?: (event: RefreshEvent) => void
  /**
   * Clock for expiry checks, rate-limit windows, cached keys and what was learned about Clerk:
   * an object with `now()` in ms since epoch (tests pass a fake one).
   * @default `{ now: () => Date.now() }`
   */
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
   * The clock calibration's calls (`GET /v1/jwks`) count too, sent only while a window is less
   * than three quarters spent. `false`: no budget.
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
   * without spending Clerk's quota, for an hour; while that is not known yet, one request per
   * process asks and the other unexpired tokens wait for its answer. `'never'`: always answer
   * that. `'always'`: ask Clerk.
   * @default 'auto'
   */
  earlyRefresh?: EarlyRefresh
  /**
   * While Clerk refuses unexpired tokens: a request for a token that Clerk sees expire within this
   * many ms is held until Clerk's clock has passed its expiry, then sent, instead of answered 503
   * `not_yet_expired`: the new token reaches the browser one Clerk round trip after expiry. At
   * most 2000; 0: never hold.
   * @default 2000
   */
  holdMs?: number
  /** Requests held at once in this process at most; past it, 503 `not_yet_expired` at once. @default 1000 */
  maxHeldRequests?: number
  /** Limits on calls to Clerk (kept in `store`); `false`: none. @default { perSession: 20, perClient: 120, windowMs: 60_000 } */
  rateLimit?: RateLimits | false
  /**
   * Random numbers in [0, 1): spread the `Retry-After` of rate-limited clients and name this
   * instance's claims in the store (tests pass a seeded one).
   * @default Math.random
   */
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

/**
 * The name of every option, at runtime (for the README test). `satisfies` makes adding
 * an option to the interface without adding it here a type error, and the other way round.
 */
export const OPTION_NAMES = {
  secretKey: true,
  publishableKey: true,
  apiUrl: true,
  origin: true,
  allowedOrigins: true,
  refreshCookieName: true,
  cookies: true,
  format: true,
  trustProxy: true,
  trustedHops: true,
  timeoutMs: true,
  maxBodyBytes: true,
  bodyTimeoutMs: true,
  upstream: true,
  fetch: true,
  onEvent: true,
  clock: true,
  store: true,
  storeSecret: true,
  storeTimeoutMs: true,
  upstreamBudget: true,
  jwtKey: true,
  verifyTokens: true,
  issuer: true,
  earlyRefresh: true,
  holdMs: true,
  maxHeldRequests: true,
  rateLimit: true,
  random: true,
} as const satisfies Record<keyof RefreshHandlerOptions, true>
