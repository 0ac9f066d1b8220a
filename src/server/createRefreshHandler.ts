import { CLERK_TIME_HEADER, CLERK_TIME_MIN_HEADER } from '../core/transport.js'
import { VERSION } from '../version.js'
import { parseCookies, sessionCookie, signedOutOfClerk, usableValues } from './cookies.js'
import { BASE_HEADERS, errorResponse, ProxyError, recoveryRequired } from './errors.js'
import { forwardedHeaders } from './headers.js'
import { createCalibration, jwksPing } from './calibrate.js'
import { createClerkClock } from './clerkClock.js'
import { createJwksCache, pemKey } from './jwks.js'
import type { RefreshEvent, RefreshHandlerOptions } from './options.js'
import { clientIp, ownOrigin, type RequestContext } from './origin.js'
import { createRefresher } from './refresher.js'
import { resolveOptions } from './resolveOptions.js'
import { createStoreSecrets } from './secrets.js'
import { createMemoryStore, createResilientStore } from './store.js'
import { CLERK_API_VERSION, clerkUpstream, type RefreshSessionRequestBody } from './upstream.js'
import { checkEnvelope, parseRefreshBody, readBody } from './validate.js'
import { createTokenVerifier } from './verify.js'

export type RefreshHandler = (request: Request, context?: RequestContext) => Promise<Response>

/** At most this many refresh cookies of the same name are tried (one real, the rest tossed). */
const MAX_CREDENTIALS = 3
/** A claim on a refresh outlives the call to Clerk by this much. */
const CLAIM_MARGIN_MS = 1_000

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
  const o = resolveOptions(options)
  const { clock, trust } = o
  const now = () => clock.now()
  const clerkHeaders = { 'Clerk-API-Version': CLERK_API_VERSION, 'User-Agent': `session-keeper/${VERSION}` }
  // How Clerk is called, for the refresh and for its signing keys.
  const clerk = { apiUrl: o.apiUrl, secretKey: o.secretKey, timeoutMs: o.timeoutMs, headers: clerkHeaders, fetch: o.fetch }
  // Where Clerk's clock stands, from every answer of Clerk's (`clerkClock.ts`).
  const clerkClock = createClerkClock()
  const upstream =
    o.upstream ??
    clerkUpstream({
      ...clerk,
      secretKey: o.secretKey!,
      now,
      onAnswer: (sentAt, receivedAt, date) => clerkClock.observeStamp(sentAt, receivedAt, date),
    })
  const keys = o.jwtKey ? pemKey(o.jwtKey) : createJwksCache({ ...clerk, now })
  const verify = o.verifyTokens ? createTokenVerifier({ keys, issuer: o.issuer, now }) : null
  const memory = createMemoryStore({ now })
  // A shared store (Redis) fails open to this process's memory, each call bounded in time.
  const storeFor = o.store ? createResilientStore(o.store, memory, { timeoutMs: o.storeTimeoutMs, now }) : () => memory
  const refresh = createRefresher({
    upstream,
    secrets: createStoreSecrets(o.storeSecret),
    now,
    earlyRefresh: o.earlyRefresh,
    rateLimit: o.rateLimit,
    budget: o.upstreamBudget,
    random: o.random,
    claimTtlMs: o.timeoutMs + CLAIM_MARGIN_MS,
    clock: clerkClock,
    holdMs: o.holdMs,
    maxHeldRequests: o.maxHeldRequests,
    // Only with Clerk itself: a stand-in `upstream` has no `/v1/jwks` to read the time from.
    calibration: o.upstream ? null : createCalibration(clerkClock, jwksPing(clerk, now), now),
  })
  // With `origin` or `allowedOrigins`, those are the whole truth; else the request's own origin.
  const allowedFor = (request: Request) => (o.configuredOrigins.length > 0 ? o.configuredOrigins : [ownOrigin(request, trust)])

  return async (request, context = {}) => {
    const started = now()
    // Clerk's clock read at most this when the request arrived, and at least that as it is
    // answered (with all that was learned meanwhile, a held request's own refresh included): the
    // browser times its token's earliest expiry on the first, its latest on the second.
    const tellClerkTime = (headers: Headers) => {
      const atMost = clerkClock.clerkTimeAtMost(started)
      const atLeast = clerkClock.clerkTimeAtLeast(now())
      if (atMost !== null) headers.set(CLERK_TIME_HEADER, String(atMost))
      if (atLeast !== null) headers.set(CLERK_TIME_MIN_HEADER, String(Math.max(0, atLeast)))
    }
    const event: Omit<RefreshEvent, 'status' | 'code' | 'durationMs'> = {}
    const report = (status: number, code: RefreshEvent['code'], reason?: string) =>
      o.onEvent?.({ status, code, ...(reason ? { reason } : {}), ...event, durationMs: now() - started })
    try {
      // The envelope first: a foreign page, a form post or a GET never gets its body read.
      const origin = checkEnvelope(request, allowedFor(request))
      const cookies = parseCookies(request.headers.get('cookie'))
      const text = await readBody(request, o.maxBodyBytes, o.bodyTimeoutMs)
      const parsed = parseRefreshBody(text, cookies.get(o.sessionCookieName)?.[0], o.sessionCookieName)
      event.sessionId = parsed.sessionId
      const [name, suffix] = await Promise.all([o.refreshCookieName, o.cookieSuffix])
      // Absent, or only empty values: nothing Clerk could accept, so Clerk is not asked.
      const credentials = usableValues(cookies.get(name), MAX_CREDENTIALS)
      if (credentials.length === 0) {
        const sent = cookies.has(name) ? `The ${name} cookie came with no value` : `No ${name} cookie came with the request`
        throw recoveryRequired('refresh_cookie_missing', `${sent}; it is planted by Clerk's handshake`)
      }
      await verify?.(parsed.token.raw, origin)
      // The session is over for a browser that signed out of Clerk. Nothing is asked of Clerk, and
      // nothing is replayed (a result kept from just before the sign-out would hand the browser a
      // token of the session it left).
      if (signedOutOfClerk(cookies, suffix))
        throw new ProxyError(401, 'session_ended', 'This browser signed out of Clerk (__client_uat=0)', {}, 'client_signed_out')

      const ip = clientIp(request, context, trust)
      const body: Omit<RefreshSessionRequestBody, 'refresh_token'> = {
        expired_token: parsed.token.raw,
        request_origin: origin,
        request_headers: forwardedHeaders(request.headers),
        format: o.format,
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
        signal: request.signal,
      })
      if (outcome.coalesced) event.coalesced = true
      if (outcome.replayed) event.replayed = true

      const headers = new Headers(BASE_HEADERS)
      tellClerkTime(headers)
      const { jwt, cookies: directives } = outcome.result
      if (directives && o.format === 'cookie') for (const directive of directives) headers.append('Set-Cookie', directive)
      else if (o.cookies) {
        const secure = (o.origin ?? ownOrigin(request, trust)).startsWith('https:')
        headers.append('Set-Cookie', sessionCookie(o.cookies.name, jwt, secure, o.cookies.attributes))
        if (suffix && o.cookies.alsoSuffixed)
          headers.append('Set-Cookie', sessionCookie(`__session_${suffix}`, jwt, secure, o.cookies.attributes))
      }
      report(200, 'refreshed')
      // `replayed`: the token may have been issued before this request (a stored result, or a call
      // this request joined), so the browser must not time its clock on it.
      const earlier = outcome.replayed || outcome.coalesced
      return new Response(JSON.stringify(earlier ? { jwt, replayed: true } : { jwt }), { status: 200, headers })
    } catch (error) {
      const failure = error instanceof ProxyError ? error : new ProxyError(500, 'internal_error', 'The refresh failed in the proxy')
      report(failure.status, failure.code, failure.reason)
      const response = errorResponse(failure)
      if (failure.code === 'not_yet_expired') tellClerkTime(response.headers)
      return response
    }
  }
}
