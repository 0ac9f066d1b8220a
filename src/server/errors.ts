/** Stable codes of the proxy's error answers (`{ "error": { "code", "message" } }`). */
export type ProxyErrorCode =
  | 'method_not_allowed' // 405
  | 'unsupported_media_type' // 415
  | 'body_too_large' // 413
  | 'origin_not_allowed' // 403
  | 'invalid_json' // 400
  | 'invalid_request' // 400: a field missing, of the wrong type, or unknown
  | 'token_malformed' // 400: expired_token is not a session JWT
  | 'session_mismatch' // 400: session_id is not the token's sid
  | 'refresh_cookie_missing' // 401: no refresh-token cookie came with the request
  | 'session_invalid' // 401: upstream refused; the session cannot be refreshed
  | 'rate_limited' // 429
  | 'upstream_bad_response' // 502
  | 'upstream_auth_failed' // 502: the secret key was refused (a server misconfiguration)
  | 'upstream_unavailable' // 503
  | 'token_not_expired' // 503: upstream refuses tokens before they expire; retry after expiry
  | 'upstream_timeout' // 504

/** An answer the proxy gives instead of a token. The message never carries a secret. */
export class ProxyError extends Error {
  override name = 'ProxyError'
  /** Upstream said plainly that the session is over (not merely "this token, not now"). */
  final = false

  constructor(
    readonly status: number,
    readonly code: ProxyErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
  }
}

/** Headers every answer carries: tokens must never be cached or sniffed. */
export const BASE_HEADERS: Record<string, string> = {
  'Cache-Control': 'no-store',
  'Content-Type': 'application/json; charset=utf-8',
  'X-Content-Type-Options': 'nosniff',
}

export function errorResponse(error: ProxyError): Response {
  const body = JSON.stringify({ error: { code: error.code, message: error.message } })
  return new Response(body, { status: error.status, headers: { ...BASE_HEADERS, ...error.headers } })
}
