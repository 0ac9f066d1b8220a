import { ERROR_CODES, type RefreshErrorCode } from './codes.js'
import { SessionKeeperError } from './SessionKeeperError.js'

export type { RefreshErrorCode } from './codes.js'

export function isRefreshErrorCode(value: string): value is RefreshErrorCode {
  return (ERROR_CODES.refresh as readonly string[]).includes(value)
}

/** A refresh through the proxy failed. `retryable` says whether the agent will try again. */
export class RefreshError extends SessionKeeperError {
  override name = 'RefreshError'
  declare readonly code: RefreshErrorCode
  /** HTTP status of the proxy's answer, or undefined when there was none. */
  readonly status: number | undefined
  /** The proxy's own error code (`{ error: { code } }`), when it sent one. */
  readonly serverCode: string | undefined
  /** The proxy's detail (`{ error: { reason } }`: Clerk's code, or the proxy's own reason). */
  readonly reason: string | undefined
  /** Delay the proxy asked for with `Retry-After`, in milliseconds. */
  readonly retryAfterMs: number | undefined
  /** The proxy's `Date` header (ms since epoch on its clock), used to measure clock skew. */
  readonly serverDate: number | undefined
  /** On 503 `not_yet_expired`: how long before expiry the proxy holds a request (`Session-Keeper-Hold`). */
  readonly holdMs: number | undefined
  /** On 503 `not_yet_expired`: Clerk's clock read at most this when the request arrived (`Session-Keeper-Clerk-Time`). */
  readonly clerkTime: number | undefined
  /** On 503 `not_yet_expired`: Clerk's clock read at least this as the proxy answered (`Session-Keeper-Clerk-Time-Min`). */
  readonly clerkTimeMin: number | undefined

  constructor(
    code: RefreshErrorCode,
    message: string,
    details: {
      status?: number
      serverCode?: string
      reason?: string
      retryAfterMs?: number
      serverDate?: number
      holdMs?: number
      clerkTime?: number
      clerkTimeMin?: number
      cause?: unknown
    } = {},
  ) {
    super(code, message, { cause: details.cause })
    this.status = details.status
    this.serverCode = details.serverCode
    this.reason = details.reason
    this.retryAfterMs = details.retryAfterMs
    this.serverDate = details.serverDate
    this.holdMs = details.holdMs
    this.clerkTime = details.clerkTime
    this.clerkTimeMin = details.clerkTimeMin
  }

  /**
   * Network failures, timeouts, 429, 5xx and garbled 200s (a captive portal, a CDN error page)
   * are worth another try; 401, 409 and the other 4xx are not (503 `not_yet_expired` is
   * retried, at expiry).
   */
  get retryable(): boolean {
    return (
      this.code === 'refresh_bad_response' ||
      this.code === 'refresh_network' ||
      this.code === 'refresh_timeout' ||
      this.code === 'refresh_rate_limited' ||
      this.code === 'refresh_unavailable' ||
      this.code === 'refresh_not_yet_expired'
    )
  }
}
