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
  /** 401: the session cannot be refreshed any more; every tab signs out. */
  | 'refresh_rejected'
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
