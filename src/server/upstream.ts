import ky, { TimeoutError } from 'ky'
import { decodeSessionToken } from '../core/token.js'
import { type FetchLike, parseRetryAfter } from '../core/transport.js'
import { ProxyError, recoveryRequired } from './errors.js'

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
  /** Every answer of Clerk's: sent and answered (local ms), and its `Date` header (ms, NaN without). */
  onAnswer?: (sentAt: number, receivedAt: number, date: number) => void
  now?: () => number
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
  const prefixUrl = options.apiUrl.replace(/\/+$/, '')
  const client = ky.create({
    prefixUrl,
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
    const path = `v1/sessions/${encodeURIComponent(sessionId)}/refresh`
    let response: Response
    const now = options.now ?? Date.now
    const sentAt = now()
    try {
      const searchParams = suffixedCookies ? { suffixed_cookies: 'true' } : undefined
      response = await client(path, { json: body, signal, searchParams })
      options.onAnswer?.(sentAt, now(), Date.parse(response.headers.get('date') ?? ''))
    } catch (error) {
      const message = describeFetchFailure(error, `${prefixUrl}/${path}`, options.timeoutMs)
      if (error instanceof TimeoutError) throw new ProxyError(504, 'upstream_timeout', message)
      throw new ProxyError(503, 'upstream_unavailable', message, { 'Retry-After': '5' })
    }
    const payload = await response.json().catch(() => undefined)
    if (response.status === 200) return readSuccess(payload, sessionId)
    throw mapClerkFailure(response, payload, `${prefixUrl}/${path}`)
  }
}

/** A URL for a message: without credentials (`https://user:pass@…` never appears). */
export function displayUrl(url: string): string {
  try {
    const parsed = new URL(url)
    parsed.username = ''
    parsed.password = ''
    return parsed.href
  } catch {
    return '(an invalid URL)'
  }
}

/**
 * Why a call to Clerk got no answer, naming the URL tried and the network's error code
 * (`ECONNREFUSED`, `ENOTFOUND`, …). Never a header: the secret key travels in one.
 */
export function describeFetchFailure(error: unknown, url: string, timeoutMs: number): string {
  const name = (error as { name?: unknown } | null)?.name
  if (name === 'TimeoutError') return `Clerk did not answer within ${timeoutMs} ms (${displayUrl(url)})`
  const cause = (error as { cause?: { code?: unknown } } | null)?.cause?.code
  const code = typeof cause === 'string' && /^[A-Z0-9_]{2,40}$/.test(cause) ? ` (${cause})` : ''
  return `Clerk could not be reached at ${displayUrl(url)}${code}`
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
  let sid: string
  try {
    sid = decodeSessionToken(jwt).sessionId
  } catch {
    throw new ProxyError(502, 'upstream_bad_response', 'Clerk answered 200 without a session token')
  }
  if (sid !== sessionId) {
    throw new ProxyError(
      502,
      'upstream_bad_response',
      `Clerk answered 200 with a token of another session (${sid.slice(0, 100)}, not ${sessionId})`,
    )
  }
  return { jwt: jwt as string, cookies }
}

/**
 * Clerk's answer → the proxy's wire status (README, "Clerk's codes"). Only "the session is over"
 * is a 401. `url`: the URL called, named in the messages of answers that suggest a wrong `apiUrl`.
 */
export function mapClerkFailure(response: Pick<Response, 'status' | 'headers'>, payload: unknown, url?: string): ProxyError {
  const { status } = response
  const at = url ? ` to POST ${displayUrl(url)}` : ''
  const first = (payload as { errors?: { code?: unknown }[] } | undefined)?.errors?.[0]?.code
  const code = typeof first === 'string' ? first.slice(0, 100) : undefined
  // Clerk's code, never its message: a message may quote what was sent.
  const seen = `${status}${code ? ` ${code}` : ''}`
  if ((status === 401 || status === 403) && code !== undefined && KEY_ERRORS.includes(code)) {
    return new ProxyError(502, 'upstream_auth_failed', `Clerk refused the secret key (${seen}): check \`secretKey\``, {}, code)
  }
  if (status === 429) {
    const seconds = Math.min(60, Math.ceil((parseRetryAfter(response.headers.get('retry-after')) ?? 10_000) / 1000))
    return new ProxyError(
      429,
      'rate_limited',
      `Clerk rate-limited this refresh (${seen}); retry in ${seconds} s`,
      { 'Retry-After': String(seconds) },
      code,
    )
  }
  if (status >= 500) {
    return new ProxyError(503, 'upstream_unavailable', `Clerk is unavailable: it answered ${seen}${at}`, { 'Retry-After': '5' }, code)
  }
  if (status === 401 && code !== undefined && SESSION_ENDED_CODES.includes(code)) {
    return new ProxyError(401, 'session_ended', `The session has ended (${seen})`, {}, code)
  }
  // Clerk's own SDK treats every other refusal as "go through the handshake", never as a sign-out.
  if (status === 401) return recoveryRequired(code ?? 'unknown', `Clerk refused this refresh (${seen}); the page must go through Clerk`)
  const redirect = status >= 300 && status < 400 ? ' (a redirect, never followed)' : ''
  return new ProxyError(502, 'upstream_bad_response', `Clerk answered ${seen}${at}${redirect}`, {}, code)
}
