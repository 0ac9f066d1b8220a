/** Clerk's error body (`ClerkErrors`). */
export function clerkErrors(status: number, code: string, message: string, headers: Record<string, string> = {}): Response {
  const body = {
    errors: [{ code, message, long_message: message, meta: {} }],
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

/** Validates the body as Clerk's spec says: required fields, no others, `format` enum. */
export function validateRefreshBody(body: unknown): RefreshBody | Response {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return clerkErrors(400, 'request_body_invalid', 'The request body is not a JSON object')
  }
  const fields = body as Record<string, unknown>
  for (const key of Object.keys(fields)) {
    if (!KNOWN.has(key)) return clerkErrors(400, 'form_param_unknown', `${key} is not a valid parameter`)
  }
  for (const key of REQUIRED) {
    if (fields[key] === undefined) return clerkErrors(400, 'form_param_missing', `${key} must be included`)
    if (typeof fields[key] !== 'string' || fields[key] === '') {
      return clerkErrors(400, 'form_param_format_invalid', `${key} must be a non-empty string`)
    }
  }
  const headers = fields.request_headers
  if (headers !== undefined && (typeof headers !== 'object' || headers === null || Array.isArray(headers))) {
    return clerkErrors(400, 'form_param_format_invalid', 'request_headers must be an object')
  }
  if (fields.format !== undefined && fields.format !== 'token' && fields.format !== 'cookie') {
    return clerkErrors(400, 'form_param_value_invalid', 'format must be one of: token, cookie')
  }
  if (fields.request_originating_ip !== undefined && typeof fields.request_originating_ip !== 'string') {
    return clerkErrors(400, 'form_param_format_invalid', 'request_originating_ip must be a string')
  }
  return fields as unknown as RefreshBody
}
