import { systemClock } from '../core/clock.js'
import { VERSION } from '../version.js'
import { cookieSuffix, frontendApiOf, parseCookies, sessionCookie } from './cookies.js'
import { BASE_HEADERS, errorResponse, ProxyError, recoveryRequired } from './errors.js'
import { forwardedHeaders } from './headers.js'
import { checkOptions, type RefreshEvent, type RefreshHandlerOptions } from './options.js'
import { clientIp, ownOrigin, type ProxyTrust, type RequestContext } from './origin.js'
import { createRefresher, type UpstreamBudget } from './refresher.js'
import { createStoreSecrets } from './secrets.js'
import { createMemoryStore, createResilientStore } from './store.js'
import { CLERK_API_VERSION, clerkUpstream, type RefreshSessionRequestBody } from './upstream.js'
import { checkEnvelope, parseRefreshBody, readBody } from './validate.js'
import { createTokenVerifier } from './verify.js'

export type RefreshHandler = (request: Request, context?: RequestContext) => Promise<Response>

/**
 * A safe share of Clerk's Backend API quota, which is per instance and shared with the app's
 * other Backend API calls: half of 1,000 per 10 s in production (`pk_live_`), half of 100 per
 * 10 s in development.
 */
function defaultBudget(publishableKey: string | undefined): UpstreamBudget {
  return { max: publishableKey?.startsWith('pk_live_') ? 500 : 50, windowMs: 10_000 }
}

/** At most this many refresh cookies of the same name are tried (one real, the rest tossed). */
const MAX_CREDENTIALS = 3

/**
 * The backend half of session-keeper: a fetch-standard handler (Next.js route handlers, Hono,
 * Workers, Bun, Deno; `toNodeHandler` for node:http and Express) that refreshes the browser's
 * session token through Clerk's `POST /v1/sessions/{id}/refresh`, as Clerk's own SDK calls it.
 *
 * It refuses cross-origin and malformed requests before reading a body, verifies the expired
 * token locally before spending Clerk's quota, answers a retried request with the same token
 * (Clerk refreshes each expired token once), and maps Clerk's answers to the wire statuses of
 * the browser agent: only "the session is over" signs the user out.
 *
 * @example
 * const handler = createRefreshHandler({
 *   secretKey: process.env.CLERK_SECRET_KEY,
 *   publishableKey: process.env.CLERK_PUBLISHABLE_KEY,
 *   origin: 'https://app.example.com',
 * })
 * export const POST = handler // Next.js: app/api/session/refresh/route.ts
 */
export function createRefreshHandler(options: RefreshHandlerOptions): RefreshHandler {
  checkOptions(options)
  const clock = options.clock ?? systemClock
  const maxBodyBytes = options.maxBodyBytes ?? 8_192
  const bodyTimeoutMs = options.bodyTimeoutMs ?? 5_000
  const format = options.format ?? 'token'
  const cookieOptions = options.cookies === false ? null : (options.cookies ?? {})
  const sessionCookieName = cookieOptions?.name ?? '__session'
  const trust: ProxyTrust = { trustProxy: options.trustProxy ?? false, trustedHops: options.trustedHops ?? 1 }
  const apiUrl = options.apiUrl ?? 'https://api.clerk.com'
  const fetchFn = options.fetch ?? ((input, init) => fetch(input, init))
  const clerkHeaders = { 'Clerk-API-Version': CLERK_API_VERSION, 'User-Agent': `session-keeper/${VERSION}` }
  const upstream =
    options.upstream ??
    clerkUpstream({ secretKey: options.secretKey!, apiUrl, timeoutMs: options.timeoutMs ?? 5_000, headers: clerkHeaders, fetch: fetchFn })
  const suffix = options.publishableKey ? cookieSuffix(options.publishableKey) : Promise.resolve(null)
  const refreshCookie = options.refreshCookieName ? Promise.resolve(options.refreshCookieName) : suffix.then((s) => `__refresh_${s}`)
  const frontendApi = options.publishableKey ? frontendApiOf(options.publishableKey) : null
  const verify =
    (options.verifyTokens ?? Boolean(options.secretKey || options.jwtKey))
      ? createTokenVerifier({
          jwtKey: options.jwtKey,
          apiUrl,
          secretKey: options.secretKey,
          headers: clerkHeaders,
          fetch: fetchFn,
          now: () => clock.now(),
          issuer: options.issuer ?? (frontendApi ? `https://${frontendApi}` : undefined),
        })
      : null
  const limits = options.rateLimit === false ? null : { perSession: 20, perClient: 120, windowMs: 60_000, ...options.rateLimit }
  const storeSecret = options.storeSecret ?? options.secretKey ?? crypto.getRandomValues(new Uint32Array(8)).join('.')
  const memory = createMemoryStore({ now: () => clock.now() })
  // A shared store (Redis) fails open to this process's memory, each call bounded in time.
  const storeFor = options.store
    ? createResilientStore(options.store, memory, { timeoutMs: options.storeTimeoutMs ?? 250, now: () => clock.now() })
    : () => memory
  const budget = options.upstreamBudget === false ? null : (options.upstreamBudget ?? defaultBudget(options.publishableKey))
  const refresh = createRefresher({
    upstream,
    secrets: createStoreSecrets(storeSecret),
    now: () => clock.now(),
    earlyRefresh: options.earlyRefresh ?? 'auto',
    limits,
    budget,
    random: options.random ?? Math.random,
    claimTtlMs: (options.timeoutMs ?? 5_000) + 1_000,
  })
  // With `origin` or `allowedOrigins`, those are the whole truth; else the request's own origin.
  const configured = [...(options.origin ? [options.origin] : []), ...(options.allowedOrigins ?? [])]
  const allowed = (origin: string, request: Request) =>
    configured.length > 0 ? configured.includes(origin) : origin === ownOrigin(request, trust)

  return async (request, context = {}) => {
    const started = clock.now()
    const event: Omit<RefreshEvent, 'status' | 'code' | 'durationMs'> = {}
    const report = (status: number, code: RefreshEvent['code'], reason?: string) =>
      options.onEvent?.({ status, code, ...(reason ? { reason } : {}), ...event, durationMs: clock.now() - started })
    try {
      // The envelope first: a foreign page, a form post or a GET never gets its body read.
      const origin = checkEnvelope(request, (o) => allowed(o, request))
      const cookies = parseCookies(request.headers.get('cookie'))
      const parsed = parseRefreshBody(await readBody(request, maxBodyBytes, bodyTimeoutMs), cookies.get(sessionCookieName)?.[0])
      event.sessionId = parsed.sessionId
      const name = await refreshCookie
      const credentials = [...new Set(cookies.get(name) ?? [])].slice(0, MAX_CREDENTIALS)
      if (credentials.length === 0) {
        throw recoveryRequired('refresh_cookie_missing', `No ${name} cookie came with the request; it is planted by Clerk's handshake`)
      }
      await verify?.(parsed.token.raw, origin)

      const ip = clientIp(request, context, trust)
      const body: Omit<RefreshSessionRequestBody, 'refresh_token'> = {
        expired_token: parsed.token.raw,
        request_origin: origin,
        request_headers: forwardedHeaders(request.headers),
        format,
        // Only when a trusted proxy vouches for it; never a reverse proxy's own address.
        ...(trust.trustProxy && ip ? { request_originating_ip: ip } : {}),
      }
      const store = storeFor(() => {
        event.store = 'degraded'
      })
      const outcome = await refresh({
        sessionId: parsed.sessionId,
        token: parsed.token,
        credentials,
        body,
        clientIp: ip,
        suffixedCookies: name.startsWith('__refresh_'),
        store,
      })
      if (outcome.coalesced) event.coalesced = true
      if (outcome.replayed) event.replayed = true

      const headers = new Headers(BASE_HEADERS)
      const { jwt, cookies: directives } = outcome.result
      if (directives && format === 'cookie') for (const directive of directives) headers.append('Set-Cookie', directive)
      else if (cookieOptions) {
        const secure = (options.origin ?? ownOrigin(request, trust)).startsWith('https:')
        headers.append('Set-Cookie', sessionCookie(sessionCookieName, jwt, secure, cookieOptions))
        const s = await suffix
        if (s && cookieOptions.name === undefined) headers.append('Set-Cookie', sessionCookie(`__session_${s}`, jwt, secure, cookieOptions))
      }
      report(200, 'refreshed')
      // `replayed`: the token may have been issued before this request (a stored result, or a call
      // this request joined), so the browser must not time its clock on it.
      const earlier = outcome.replayed || outcome.coalesced
      return new Response(JSON.stringify(earlier ? { jwt, replayed: true } : { jwt }), { status: 200, headers })
    } catch (error) {
      const failure = error instanceof ProxyError ? error : new ProxyError(500, 'internal_error', 'The refresh failed in the proxy')
      report(failure.status, failure.code, failure.reason)
      return errorResponse(failure)
    }
  }
}
