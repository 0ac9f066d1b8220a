/**
 * Clerk's error codes for `POST /v1/sessions/{id}/refresh`, as its error catalogue names them
 * (`session_refresh.go`). Every refusal of a refresh is an HTTP 401; form errors are 422.
 */
export const REFRESH_ERROR_CODES = [
  'session_refresh_session_not_found',
  'session_refresh_inactive_session',
  'session_refresh_user_not_found',
  'refresh_token_not_found',
  'session_refresh_expired_session_token_consumed',
  'session_refresh_expired_session_token_too_old',
  'session_refresh_session_token_ineligible',
  'session_refresh_cannot_determine_session_token_age',
  'session_refresh_expired_session_token_missing_iat',
  'expired_session_token_invalid',
  'expired_session_token_missing_azp',
  'expired_session_token_missing_sid',
  'refresh_sid_mismatch',
  'refresh_request_origin_invalid',
  'refresh_request_origin_azp_mismatch',
] as const

export type RefreshErrorCode = (typeof REFRESH_ERROR_CODES)[number]

/** Clerk's error body (`ClerkErrors`), with `Content-Type` exactly as Clerk's SDK expects it. */
export function clerkErrors(
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
  meta: Record<string, unknown> = {},
): Response {
  const body = {
    errors: [{ code, message, long_message: message, meta }],
    clerk_trace_id: Math.random().toString(16).slice(2),
  }
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers },
  })
}

export interface RefreshBody {
  expired_token: string
  refresh_token: string
  request_origin: string
  request_headers?: Record<string, unknown>
  format?: 'token' | 'cookie'
  request_originating_ip?: string
}

const REQUIRED = ['expired_token', 'refresh_token', 'request_origin'] as const
const OPTIONAL = ['request_headers', 'format', 'request_originating_ip'] as const
const KNOWN = new Set<string>([...REQUIRED, ...OPTIONAL])

/** A 422 form error naming the parameter, as Clerk answers a bad or missing one. */
export const formError = (code: string, param: string, message: string) => clerkErrors(422, code, message, {}, { param_name: param })

/** Validates the body as Clerk's spec says: required fields, no others, `format` enum. */
export function validateRefreshBody(body: unknown): RefreshBody | Response {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return clerkErrors(400, 'request_body_invalid', 'The request body is not a JSON object')
  }
  const fields = body as Record<string, unknown>
  for (const key of Object.keys(fields)) {
    if (!KNOWN.has(key)) return formError('form_param_unknown', key, `${key} is not a valid parameter for this request.`)
  }
  for (const key of REQUIRED) {
    if (fields[key] === undefined) return formError('form_param_missing', key, `${key} must be included.`)
    if (typeof fields[key] !== 'string' || fields[key] === '') {
      return formError('form_param_format_invalid', key, `${key} must be a non-empty string.`)
    }
  }
  const headers = fields.request_headers
  if (headers !== undefined) {
    const valid =
      typeof headers === 'object' &&
      headers !== null &&
      !Array.isArray(headers) &&
      Object.values(headers).every((v) => Array.isArray(v) && v.every((s) => typeof s === 'string'))
    if (!valid) return formError('form_param_format_invalid', 'request_headers', 'request_headers must map names to arrays of strings.')
  }
  if (fields.format !== undefined && fields.format !== 'token' && fields.format !== 'cookie') {
    return formError('form_param_value_invalid', 'format', 'format must be one of: token, cookie.')
  }
  if (fields.request_originating_ip !== undefined && typeof fields.request_originating_ip !== 'string') {
    return formError('form_param_format_invalid', 'request_originating_ip', 'request_originating_ip must be a string.')
  }
  return fields as unknown as RefreshBody
}
