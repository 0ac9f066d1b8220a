/** Stable codes of the proxy's error answers (`{ "error": { "code", "message", "reason"? } }`). */
export type ProxyErrorCode =
  | 'method_not_allowed' // 405
  | 'unsupported_media_type' // 415
  | 'body_too_large' // 413
  | 'body_timeout' // 408: the body did not arrive within `bodyTimeoutMs`
  | 'origin_not_allowed' // 403
  | 'invalid_json' // 400
  | 'invalid_request' // 400: a field missing, of the wrong type, or unknown
  | 'token_malformed' // 400: expired_token is not a session JWT
  | 'session_mismatch' // 400: session_id is not the token's sid
  | 'session_ended' // 401: Clerk said the session is over (inactive, not found, user gone)
  | 'recovery_required' // 409: this browser cannot refresh through the proxy; the session may live
  | 'rate_limited' // 429
  | 'internal_error' // 500: a bug or a misconfiguration of the proxy
  | 'upstream_bad_response' // 502
  | 'upstream_auth_failed' // 502: the secret key was refused (a server misconfiguration)
  | 'upstream_unavailable' // 503
  | 'not_yet_expired' // 503: Clerk refuses tokens before they expire; retry after expiry
  | 'upstream_timeout' // 504

/** An answer the proxy gives instead of a token. The message never carries a secret. */
export class ProxyError extends Error {
  override name = 'ProxyError'

  constructor(
    readonly status: number,
    readonly code: ProxyErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
    /** Why, in more detail (Clerk's error code, or the proxy's own reason); sent to the browser. */
    readonly reason?: string,
  ) {
    super(message)
  }
}

/** Clerk's answer for a token it will not refresh yet (or one already superseded: clerk-refresh-facts.md). */
export const INELIGIBLE = 'session_refresh_session_token_ineligible'

/** Clerk refused the token as `…_ineligible`. */
export function isIneligible(error: unknown): error is ProxyError {
  return error instanceof ProxyError && error.reason === INELIGIBLE
}

/** 409 `recovery_required`: no sign-out, but this browser must go through Clerk's handshake. */
export function recoveryRequired(reason: string, message: string): ProxyError {
  return new ProxyError(409, 'recovery_required', message, {}, reason)
}

/** Headers every answer carries: tokens must never be cached or sniffed. */
export const BASE_HEADERS: Readonly<Record<string, string>> = {
  'Cache-Control': 'no-store',
  'Content-Type': 'application/json; charset=utf-8',
  'X-Content-Type-Options': 'nosniff',
}

export function errorBody(error: Pick<ProxyError, 'code' | 'message' | 'reason'>): string {
  const reason = error.reason ? { reason: error.reason } : {}
  return JSON.stringify({ error: { code: error.code, message: error.message, ...reason } })
}

export function errorResponse(error: ProxyError): Response {
  return new Response(errorBody(error), { status: error.status, headers: { ...BASE_HEADERS, ...error.headers } })
}
