/**
 * Every error the agent reports has one of these stable codes, so callers can
 * `switch (error.code)` and TypeScript narrows the union.
 */
export type SessionErrorCode =
  /** The token is not a JWT, or lacks numeric `exp`/`iat` or a string `sid`. */
  | 'token_malformed'
  /** The proxy could not be reached (network failure, DNS, CORS, offline). */
  | 'refresh_network'
  /** The proxy did not answer within `requestTimeoutMs`. */
  | 'refresh_timeout'
  /** 429 from the proxy; retried after `Retry-After`. */
  | 'refresh_rate_limited'
  /** 5xx from the proxy; retried with backoff. */
  | 'refresh_unavailable'
  /** 401 `session_ended`: the session is over (ended, revoked, user gone); every tab signs out. */
  | 'refresh_rejected'
  /**
   * 409 `recovery_required` (or a 401 without `session_ended`): this browser cannot refresh
   * through the proxy, but the session may be alive. No sign-out; the page must go through
   * Clerk's handshake (usually a reload). No tab asks again for the same token.
   */
  | 'recovery_required'
  /**
   * 503 `not_yet_expired`: Clerk refreshes tokens only once they have expired. Not shown as an
   * error: every tab then refreshes at expiry instead of before it.
   */
  | 'refresh_not_yet_expired'
  /** Another 4xx (400, 403, 405, 413, 415): a bug or a misconfiguration, not retried. */
  | 'refresh_refused'
  /** 200 whose body is not `{ "jwt": <valid token for this session> }`. */
  | 'refresh_bad_response'
  /** `getToken()` could not obtain a valid token within `getTokenTimeoutMs`. */
  | 'token_unavailable'
  /** The agent was used before `start()` or after `stop()`. */
  | 'not_started'

/** Base class of every error thrown or reported by the agent. */
export class SessionKeeperError extends Error {
  override name = 'SessionKeeperError'
  readonly code: SessionErrorCode

  constructor(code: SessionErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}
