import { systemClock, type Clock } from '../core/clock.js'
import { cookieSuffix, parseCookies, sessionCookie, type SessionCookieOptions } from './cookies.js'
import { BASE_HEADERS, errorResponse, ProxyError, type ProxyErrorCode } from './errors.js'
import { forwardedHeaders } from './headers.js'
import { clerkUpstream, type RefreshSessionRequestBody, type Upstream, type UpstreamResult } from './upstream.js'
import { checkEnvelope, parseRefreshBody, readBody } from './validate.js'

export interface RefreshHandlerOptions {
  /** Clerk secret key (`sk_live_…`/`sk_test_…`). Required unless `upstream` is given. */
  secretKey?: string
  /** Publishable key: the refresh cookie's suffix is derived from it, as Clerk does. */
  publishableKey?: string
  /** @default 'https://api.clerk.com' */
  apiUrl?: string
  /**
   * Origins allowed besides the request's own (e.g. `https://app.example.com`).
   * @default [] (same origin only)
   */
  allowedOrigins?: string[]
  /**
   * Name of the refresh-token cookie.
   * @default `__refresh_<suffix>` with the publishable key, then `__refresh`
   */
  refreshCookieName?: string
  /**
   * Session cookie read when the body has no `expired_token`, and set on success.
   * `false`: never set the cookie. With `format: 'cookie'`, Clerk's own Set-Cookie are passed on.
   * @default { name: '__session' }
   */
  cookies?: SessionCookieOptions | false
  /** Clerk's response format. @default 'token' */
  format?: 'token' | 'cookie'
  /**
   * Behind a reverse proxy: take the client IP from `X-Forwarded-For` and the request's own origin
   * from `X-Forwarded-Proto`/`X-Forwarded-Host`. Never enable without such a proxy.
   * @default false
   */
  trustProxy?: boolean
  /** Upstream timeout. @default 5_000 */
  timeoutMs?: number
  /** Largest accepted body. @default 8_192 */
  maxBodyBytes?: number
  /** Replaces the call to Clerk, e.g. for another auth backend. */
  upstream?: Upstream
  /** `fetch` used to call Clerk. @default globalThis.fetch */
  fetch?: (input: Request | string | URL, init?: RequestInit) => Promise<Response>
  /** Receives one event per request; events never contain tokens or keys. */
  onEvent?: (event: RefreshEvent) => void
  /** Clock for the "token not expired yet" check. @default Date.now */
  clock?: Pick<Clock, 'now'>
}

export interface RefreshEvent {
  status: number
  code: ProxyErrorCode | 'refreshed'
  sessionId?: string
  durationMs: number
  /** True when this request shared another's upstream call. */
  coalesced?: boolean
}

/** Connection facts a fetch `Request` does not carry; `toNodeHandler` fills them in. */
export interface RequestContext {
  clientIp?: string
}

export type RefreshHandler = (request: Request, context?: RequestContext) => Promise<Response>

export function createRefreshHandler(options: RefreshHandlerOptions): RefreshHandler {
  if (!options.upstream && !options.secretKey) {
    throw new TypeError('createRefreshHandler: `secretKey` is required (or pass `upstream`)')
  }
  const clock = options.clock ?? systemClock
  const maxBodyBytes = options.maxBodyBytes ?? 8_192
  const format = options.format ?? 'token'
  const cookieOptions = options.cookies === false ? null : (options.cookies ?? {})
  const upstream =
    options.upstream ??
    clerkUpstream({
      secretKey: options.secretKey!,
      apiUrl: options.apiUrl ?? 'https://api.clerk.com',
      timeoutMs: options.timeoutMs ?? 5_000,
      fetch: options.fetch ?? ((input, init) => fetch(input, init)),
    })
  const refreshCookieNames = resolveRefreshCookieNames(options)
  const inflight = new Map<string, Promise<UpstreamResult>>()

  return async (request, context = {}) => {
    const started = clock.now()
    let sessionId: string | undefined
    let coalesced = false
    const report = (status: number, code: RefreshEvent['code']) =>
      options.onEvent?.({ status, code, sessionId, durationMs: clock.now() - started, ...(coalesced ? { coalesced } : {}) })
    try {
      const own = ownOrigin(request, options.trustProxy ?? false)
      const origin = checkEnvelope(request, (o) => o === own || (options.allowedOrigins ?? []).includes(o))
      const cookies = parseCookies(request.headers.get('cookie'))
      const parsed = parseRefreshBody(await readBody(request, maxBodyBytes), cookies.get(cookieOptions?.name ?? '__session'))
      sessionId = parsed.sessionId
      const names = await refreshCookieNames
      const refreshToken = names.map((name) => cookies.get(name)).find(Boolean)
      if (!refreshToken) throw new ProxyError(401, 'refresh_cookie_missing', 'No refresh cookie came with the request')

      const body: RefreshSessionRequestBody = {
        expired_token: parsed.token.raw,
        refresh_token: refreshToken,
        request_origin: origin,
        request_headers: forwardedHeaders(request.headers),
        format,
      }
      const ip = clientIp(request, context, options.trustProxy ?? false)
      if (ip) body.request_originating_ip = ip

      // Tabs of one browser, or a retry racing its original, share one upstream call.
      const key = `${parsed.sessionId}\u0000${parsed.token.raw}`
      let call = inflight.get(key)
      coalesced = call !== undefined
      if (!call) {
        call = upstream(parsed.sessionId, body, request.signal).finally(() => inflight.delete(key))
        inflight.set(key, call)
      }
      const result = await call.catch((error: unknown) => {
        throw notYetExpired(error, parsed.token.expiresAt * 1000 - clock.now())
      })

      const headers = new Headers(BASE_HEADERS)
      if (result.cookies && format === 'cookie') for (const cookie of result.cookies) headers.append('Set-Cookie', cookie)
      else if (cookieOptions) {
        const secure = ownOrigin(request, options.trustProxy ?? false).startsWith('https:')
        headers.append('Set-Cookie', sessionCookie(result.jwt, parsed.token.lifetimeMs / 1000, secure, cookieOptions))
      }
      report(200, 'refreshed')
      return new Response(JSON.stringify({ jwt: result.jwt }), { status: 200, headers })
    } catch (error) {
      const failure = error instanceof ProxyError ? error : new ProxyError(502, 'upstream_bad_response', 'The refresh failed')
      report(failure.status, failure.code)
      return errorResponse(failure)
    }
  }
}

/**
 * Clerk may refuse to refresh a token that has not expired yet (its docs do not say). The agent
 * refreshes early, so such a refusal must not sign the user out: unless Clerk said the session
 * itself ended (revoked, signed out, not found), it becomes "retry once the token has expired",
 * and the agent keeps the still-valid token meanwhile.
 */
function notYetExpired(error: unknown, msUntilExpiry: number): unknown {
  if (!(error instanceof ProxyError) || error.code !== 'session_invalid' || error.final || msUntilExpiry <= 0) return error
  const seconds = String(Math.ceil(msUntilExpiry / 1000) + 1)
  return new ProxyError(503, 'token_not_expired', 'Refresh refused before expiry; retry after it', { 'Retry-After': seconds })
}

async function resolveRefreshCookieNames(options: RefreshHandlerOptions): Promise<string[]> {
  if (options.refreshCookieName) return [options.refreshCookieName]
  if (!options.publishableKey) return ['__refresh']
  return [`__refresh_${await cookieSuffix(options.publishableKey)}`, '__refresh']
}

function ownOrigin(request: Request, trustProxy: boolean): string {
  const url = new URL(request.url)
  if (!trustProxy) return url.origin
  const proto = request.headers.get('x-forwarded-proto')?.split(',')[0].trim()
  const host = request.headers.get('x-forwarded-host')?.split(',')[0].trim()
  return `${proto || url.protocol.slice(0, -1)}://${host || url.host}`
}

function clientIp(request: Request, context: RequestContext, trustProxy: boolean): string | undefined {
  if (trustProxy) {
    const forwarded = request.headers.get('x-forwarded-for')?.split(',')[0].trim()
    if (forwarded && /^[0-9A-Fa-f:.]{2,45}$/.test(forwarded)) return forwarded
  }
  return context.clientIp
}
