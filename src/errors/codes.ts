/**
 * Every error code the agent reports, in one place, by the class that carries it. `code` is a
 * literal type on each class, so `switch (error.code)` on an `AnySessionKeeperError` narrows to
 * the class (and its fields, such as `RefreshError.retryAfterMs`).
 *
 * - `token_malformed` (`TokenError`): not a JWT, or no numeric `exp`/`iat`, or no string `sid`.
 * - `refresh_network`: the proxy could not be reached (network, DNS, CORS, offline).
 * - `refresh_timeout`: no answer within `requestTimeoutMs`.
 * - `refresh_rate_limited`: 429; retried after `Retry-After`.
 * - `refresh_unavailable`: 5xx; retried with backoff.
 * - `refresh_rejected`: 401 `session_ended`: the session is over; every tab signs out.
 * - `recovery_required`: 409 (or a 401 without `session_ended`): this browser cannot refresh
 *   through the proxy, the session may be alive; the page must go through Clerk's handshake.
 * - `refresh_not_yet_expired`: 503 `not_yet_expired`: every tab refreshes at expiry from now on.
 * - `refresh_refused`: another 4xx (400, 403, 405, 413, 415): a bug or a misconfiguration.
 * - `refresh_bad_response`: a 200 whose body is not `{ "jwt": <valid token for this session> }`.
 * - `token_unavailable` (`TokenUnavailableError`): no valid token within `getTokenTimeoutMs`.
 * - `not_started` (`NotStartedError`): used before `start()` or after `stop()`.
 */
export const ERROR_CODES = {
  token: ['token_malformed'],
  refresh: [
    'refresh_network',
    'refresh_timeout',
    'refresh_rate_limited',
    'refresh_unavailable',
    'refresh_rejected',
    'recovery_required',
    'refresh_not_yet_expired',
    'refresh_refused',
    'refresh_bad_response',
  ],
  tokenUnavailable: ['token_unavailable'],
  notStarted: ['not_started'],
} as const

export type TokenErrorCode = (typeof ERROR_CODES.token)[number]
export type RefreshErrorCode = (typeof ERROR_CODES.refresh)[number]
export type SessionErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES][number]
