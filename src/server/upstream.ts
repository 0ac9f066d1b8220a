import ky, { TimeoutError } from 'ky'
import { decodeSessionToken } from '../core/token.js'
import { parseRetryAfter } from '../core/transport.js'
import { ProxyError, recoveryRequired } from './errors.js'
import type { FetchLike } from './verify.js'

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

/**
 * Performs one refresh; throws ProxyError for every outcome but success (`reason`: Clerk's code).
 * `suffixedCookies` asks Clerk for suffixed cookie names, as Clerk's SDK does when the suffixed
 * refresh cookie was used.
 */
export type Upstream = (
  sessionId: string,
  body: RefreshSessionRequestBody,
  signal: AbortSignal,
  options?: { suffixedCookies?: boolean },
) => Promise<UpstreamResult>

/** The Backend API version this proxy speaks, as Clerk's SDK 3.25 pins it. */
export const CLERK_API_VERSION = '2026-05-12'

export interface ClerkUpstreamOptions {
  secretKey: string
  apiUrl: string
  timeoutMs: number
  /** Headers of every call to Clerk: `Clerk-API-Version`, `User-Agent`. */
  headers: Record<string, string>
  fetch: FetchLike
}

/** Clerk's codes that say the session itself is over: the only ones that sign the user out. */
export const SESSION_ENDED_CODES: readonly string[] = [
  'session_refresh_session_not_found',
  'session_refresh_inactive_session',
  'session_refresh_user_not_found',
]

/** Clerk's codes that mean our secret key was refused, not the user's session. */
const KEY_ERRORS: readonly string[] = ['clerk_key_invalid', 'authorization_header_format_invalid', 'could_not_authenticate_request']

export function clerkUpstream(options: ClerkUpstreamOptions): Upstream {
  const client = ky.create({
    prefixUrl: options.apiUrl.replace(/\/+$/, ''),
    method: 'post',
    retry: 0,
    timeout: options.timeoutMs,
    throwHttpErrors: false,
    // A redirect would re-send the refresh token to wherever `Location` points: never follow.
    redirect: 'manual',
    headers: { ...options.headers, Authorization: `Bearer ${options.secretKey}` },
    fetch: (input, init) => options.fetch(input, init),
  })

  return async (sessionId, body, signal, { suffixedCookies = false } = {}) => {
    let response: Response
    try {
      const searchParams = suffixedCookies ? { suffixed_cookies: 'true' } : undefined
      response = await client(`v1/sessions/${encodeURIComponent(sessionId)}/refresh`, { json: body, signal, searchParams })
    } catch (error) {
      if (error instanceof TimeoutError) throw new ProxyError(504, 'upstream_timeout', 'Clerk did not answer in time')
      throw new ProxyError(503, 'upstream_unavailable', 'Clerk could not be reached', { 'Retry-After': '5' })
    }
    const payload = await response.json().catch(() => undefined)
    if (response.status === 200) return readSuccess(payload, sessionId)
    throw mapClerkFailure(response, payload)
  }
}

function readSuccess(payload: unknown, sessionId: string): UpstreamResult {
  const value = (payload ?? {}) as { jwt?: unknown; cookies?: unknown }
  let jwt: unknown = value.jwt
  let cookies: string[] | undefined
  if (Array.isArray(value.cookies) && value.cookies.every((c) => typeof c === 'string')) {
    cookies = value.cookies as string[]
    // As Clerk's SDK does: the new JWT is the value of the last `__session*` directive.
    const session = cookies
      .map((c) => /^__session(?:_[A-Za-z0-9_-]+)?=([^;]+)/.exec(c))
      .filter(Boolean)
      .pop()
    jwt = session?.[1]
  }
  try {
    if (decodeSessionToken(jwt).sessionId !== sessionId) throw new Error('sid')
  } catch {
    throw new ProxyError(502, 'upstream_bad_response', 'Clerk answered without a valid session token')
  }
  return { jwt: jwt as string, cookies }
}

/** Clerk's answer → the proxy's wire status (README, "Clerk's codes"). Only "the session is over" is a 401. */
export function mapClerkFailure(response: Pick<Response, 'status' | 'headers'>, payload: unknown): ProxyError {
  const { status } = response
  const first = (payload as { errors?: { code?: unknown }[] } | undefined)?.errors?.[0]?.code
  const code = typeof first === 'string' ? first.slice(0, 100) : undefined
  if ((status === 401 || status === 403) && code !== undefined && KEY_ERRORS.includes(code)) {
    return new ProxyError(502, 'upstream_auth_failed', 'Clerk refused the secret key', {}, code)
  }
  if (status === 429) {
    const seconds = Math.min(60, Math.ceil((parseRetryAfter(response.headers.get('retry-after')) ?? 10_000) / 1000))
    return new ProxyError(429, 'rate_limited', 'Too many refreshes; retry later', { 'Retry-After': String(seconds) }, code)
  }
  if (status >= 500) {
    return new ProxyError(503, 'upstream_unavailable', 'Clerk is unavailable', { 'Retry-After': '5' }, code)
  }
  if (status === 401 && code !== undefined && SESSION_ENDED_CODES.includes(code)) {
    return new ProxyError(401, 'session_ended', 'The session has ended', {}, code)
  }
  // Clerk's own SDK treats every other refusal as "go through the handshake", never as a sign-out.
  if (status === 401) return recoveryRequired(code ?? 'unknown', 'Clerk refused this refresh; the page must go through Clerk')
  return new ProxyError(502, 'upstream_bad_response', `Clerk answered ${status}`, {}, code)
}
