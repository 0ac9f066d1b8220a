import ky, { TimeoutError } from 'ky'
import { decodeSessionToken } from '../core/token.js'
import { parseRetryAfter } from '../core/transport.js'
import { ProxyError } from './errors.js'

/** Clerk's `RefreshSessionRequestBody`, as sent to `POST /v1/sessions/{id}/refresh`. */
export interface RefreshSessionRequestBody {
  expired_token: string
  refresh_token: string
  request_origin: string
  request_headers?: Record<string, string[]>
  format?: 'token' | 'cookie'
  request_originating_ip?: string
}

/** What an upstream produced: the new session JWT, and Set-Cookie directives to pass on. */
export interface UpstreamResult {
  jwt: string
  cookies?: string[]
}

/** Performs one refresh; throws ProxyError for every outcome but success. */
export type Upstream = (sessionId: string, body: RefreshSessionRequestBody, signal: AbortSignal) => Promise<UpstreamResult>

export interface ClerkUpstreamOptions {
  secretKey: string
  apiUrl: string
  timeoutMs: number
  fetch: (input: Request | string | URL, init?: RequestInit) => Promise<Response>
}

/** Clerk error codes that say the session itself is over, whatever the token's age. */
const SESSION_ENDED = new Set([
  'signed_out', 'session_revoked', 'session_not_active', 'session_expired', 'session_ended',
  'resource_not_found', 'refresh_token_invalid',
])

/** Clerk error codes that mean our secret key was refused, not the user's session. */
const KEY_ERRORS = new Set(['authentication_invalid', 'clerk_key_invalid', 'api_key_invalid', 'secret_key_invalid'])

export function clerkUpstream(options: ClerkUpstreamOptions): Upstream {
  const client = ky.create({
    prefixUrl: options.apiUrl.replace(/\/+$/, ''),
    method: 'post',
    retry: 0,
    timeout: options.timeoutMs,
    throwHttpErrors: false,
    headers: { Authorization: `Bearer ${options.secretKey}` },
    fetch: (input, init) => options.fetch(input, init),
  })

  return async (sessionId, body, signal) => {
    let response: Response
    try {
      response = await client(`v1/sessions/${encodeURIComponent(sessionId)}/refresh`, { json: body, signal })
    } catch (error) {
      if (error instanceof TimeoutError) throw new ProxyError(504, 'upstream_timeout', 'Clerk did not answer in time')
      throw new ProxyError(503, 'upstream_unavailable', 'Clerk could not be reached', { 'Retry-After': '5' })
    }
    const payload = await response.json().catch(() => undefined)
    if (response.ok) return readSuccess(payload, sessionId)
    throw mapFailure(response, payload)
  }
}

function readSuccess(payload: unknown, sessionId: string): UpstreamResult {
  const value = (payload ?? {}) as { jwt?: unknown; cookies?: unknown }
  let jwt: unknown = value.jwt
  let cookies: string[] | undefined
  if (Array.isArray(value.cookies) && value.cookies.every((c) => typeof c === 'string')) {
    cookies = value.cookies as string[]
    const session = cookies.map((c) => /^__session(?:_[A-Za-z0-9_-]+)?=([^;]+)/.exec(c)).find(Boolean)
    jwt = session?.[1]
  }
  try {
    if (decodeSessionToken(jwt).sessionId !== sessionId) throw new Error('sid')
  } catch {
    throw new ProxyError(502, 'upstream_bad_response', 'Clerk answered without a valid session token')
  }
  return { jwt: jwt as string, cookies }
}

function mapFailure(response: Response, payload: unknown): ProxyError {
  const status = response.status
  const codes = ((payload as { errors?: { code?: unknown }[] })?.errors ?? []).map((e) => e?.code)
  if ((status === 401 || status === 403) && codes.some((code) => KEY_ERRORS.has(code as string))) {
    return new ProxyError(502, 'upstream_auth_failed', 'Clerk refused the secret key')
  }
  if (status === 429) {
    const seconds = Math.ceil((parseRetryAfter(response.headers.get('retry-after')) ?? 10_000) / 1000)
    return new ProxyError(429, 'rate_limited', 'Too many refreshes; retry later', { 'Retry-After': String(seconds) })
  }
  if (status >= 500) {
    const retryAfter = response.headers.get('retry-after')
    return new ProxyError(503, 'upstream_unavailable', 'Clerk is unavailable', retryAfter ? { 'Retry-After': retryAfter } : {})
  }
  if (status >= 400 && status < 500) {
    const error = new ProxyError(401, 'session_invalid', 'The session cannot be refreshed')
    error.final = status === 404 || codes.some((code) => SESSION_ENDED.has(code as string))
    return error
  }
  return new ProxyError(502, 'upstream_bad_response', `Clerk answered ${status}`)
}
