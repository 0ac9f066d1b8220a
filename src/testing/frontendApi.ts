import { parseCookies } from '../server/cookies.js'
import { clerkErrors, formError } from './catalogue.js'
import type { Client, Clients } from './clients.js'
import { clearCookie, setCookie } from './cookies.js'
import { HANDSHAKE, handshakeDirectives, handshakeToken, type Nonces } from './handshake.js'
import { randomId, type SigningKey } from './jwt.js'

/** What the Frontend API needs of the emulated instance. */
export interface FrontendDeps {
  instanceType: 'production' | 'development'
  now: () => number
  key: SigningKey
  suffix: string
  secure: boolean
  /** Origins besides the Frontend API's own that `redirect_url` may point to. */
  redirectOrigins: readonly string[]
  clients: Clients
  nonces: Nonces
  sessions: {
    start(userId: string, origin: string): string
    end(sessionId: string): void
    /** A fresh token and the refresh token of a live session; null once it is over. */
    mint(sessionId: string): { jwt: string; refreshToken: string } | null
  }
  onHandshake(reason: string): void
}

interface Context {
  url: URL
  /** The path the Frontend API is mounted under (`/__clerk`), '' at the root. */
  mount: string
  cookies: Map<string, string[]>
  request: Request
}

type Route = { method: 'GET' | 'POST'; path: RegExp; run: (ctx: Context, match: RegExpExecArray) => Response }

const CLIENT_COOKIE = '__client'
/** The handshake's own cookie (production) lives only until the app has read it. */
const HANDOFF_SECONDS = 60
const USER_ID = /^[A-Za-z0-9_-]{1,64}$/

/**
 * Clerk's Frontend API, the part a server-side middleware meets: the hosted sign-in and sign-out
 * pages, the handshake, sign-out of a session and (development instances) dev browsers. It is
 * mounted wherever the app tells Clerk's middleware it lives (`proxyUrl: '/__clerk'`); routes
 * match by the end of the path, so any mount point works.
 */
export function createFrontendApi(deps: FrontendDeps): (request: Request) => Promise<Response> {
  const dev = deps.instanceType === 'development'
  const plain = { secure: deps.secure }

  /** This browser's client: its `__client` cookie, or on development instances its dev-browser token. */
  function clientOf(ctx: Context): Client | null {
    if (!dev) return deps.clients.byCookie(ctx.cookies.get(CLIENT_COOKIE)?.[0])
    const token =
      ctx.url.searchParams.get(HANDSHAKE.devBrowser) ??
      ctx.cookies.get(`${HANDSHAKE.devBrowser}_${deps.suffix}`)?.[0] ??
      ctx.cookies.get(HANDSHAKE.devBrowser)?.[0]
    return deps.clients.byDevBrowser(token)
  }

  function redirectTarget(ctx: Context): URL | Response {
    const raw = ctx.url.searchParams.get('redirect_url')
    if (!raw) return formError('form_param_missing', 'redirect_url', 'redirect_url must be included.')
    let target: URL
    try {
      target = new URL(raw)
    } catch {
      return formError('form_param_format_invalid', 'redirect_url', 'redirect_url must be an absolute http(s) URL.')
    }
    if (target.protocol !== 'http:' && target.protocol !== 'https:')
      return formError('form_param_format_invalid', 'redirect_url', 'redirect_url must be an absolute http(s) URL.')
    if (target.origin !== ctx.url.origin && !deps.redirectOrigins.includes(target.origin))
      return formError('form_param_value_invalid', 'redirect_url', `redirect_url must be on ${ctx.url.origin} or an allowed origin.`)
    return target
  }

  function redirect(location: URL, cookies: string[] = [], status = 302): Response {
    const headers = new Headers({ Location: location.href, 'Cache-Control': 'no-store' })
    for (const cookie of cookies) headers.append('Set-Cookie', cookie)
    return new Response(null, { status, headers })
  }

  /**
   * What Clerk's browser SDK writes on `signOut()`: `__client_uat=0` and no `__session`. The
   * HttpOnly `__refresh_<sfx>` stays: it is worthless now, and Clerk says so (session inactive).
   */
  const signedOut = () => [
    ...[HANDSHAKE.clientUat, `${HANDSHAKE.clientUat}_${deps.suffix}`].map((name) => setCookie(name, '0', plain)),
    ...[HANDSHAKE.session, `${HANDSHAKE.session}_${deps.suffix}`].map((name) => clearCookie(name, plain)),
  ]

  function endClientSession(client: Client): void {
    if (client.sessionId) deps.sessions.end(client.sessionId)
    deps.clients.signOut(client)
  }

  /** Hosted sign-in: a session for this browser's client, then back to `redirect_url`. */
  function signIn(ctx: Context): Response {
    const target = redirectTarget(ctx)
    if (target instanceof Response) return target
    const userId = ctx.url.searchParams.get('user_id') ?? randomId('user_')
    if (!USER_ID.test(userId)) return formError('form_param_format_invalid', 'user_id', 'user_id must be 1-64 letters, digits, _ or -.')
    const client = clientOf(ctx) ?? deps.clients.create({ devBrowser: dev })
    if (client.sessionId) deps.sessions.end(client.sessionId) // single-session: the new one replaces it
    deps.clients.signIn(client, deps.sessions.start(userId, target.origin))
    const uat = String(client.updatedAt)
    const cookies = [setCookie('__client_uat', uat, plain), setCookie(`__client_uat_${deps.suffix}`, uat, plain)]
    if (dev)
      target.searchParams.set(HANDSHAKE.devBrowser, client.devBrowser!) // as Clerk's Account Portal does
    else cookies.push(setCookie(CLIENT_COOKIE, client.id, { ...plain, httpOnly: true, path: ctx.mount || '/' }))
    return redirect(target, cookies)
  }

  /** Hosted sign-out page: ends the client's session, then back to `redirect_url`. */
  function signOutPage(ctx: Context): Response {
    const target = redirectTarget(ctx)
    if (target instanceof Response) return target
    const client = clientOf(ctx)
    if (client) endClientSession(client)
    return redirect(target, signedOut())
  }

  /** `POST /v1/client/sessions/{id}/end`: what Clerk's browser SDK calls on `signOut()`. */
  function endSession(ctx: Context, match: RegExpExecArray): Response {
    const origin = ctx.request.headers.get('origin')
    if (origin !== null && origin !== ctx.url.origin) return clerkErrors(403, 'origin_invalid', 'The request origin is not allowed.')
    const sessionId = decodeURIComponent(match[2]!)
    const client = clientOf(ctx)
    if (!client || client.sessionId !== sessionId) return clerkErrors(404, 'resource_not_found', 'No session with that id on this client.')
    endClientSession(client)
    const headers = new Headers({ 'Content-Type': 'application/json', 'Cache-Control': 'no-store' })
    for (const cookie of signedOut()) headers.append('Set-Cookie', cookie)
    const body = { response: { object: 'session', id: sessionId, status: 'ended' }, client: { object: 'client', sessions: [] } }
    return new Response(JSON.stringify(body), { headers })
  }

  /**
   * `GET /v1/client/handshake`: the client's session as cookie directives, handed to the app by
   * nonce or by a signed token; on production instances in a short-lived cookie (the Frontend API
   * shares the app's site), on development instances in the query, with the dev-browser token.
   */
  function handshake(ctx: Context): Response {
    const target = redirectTarget(ctx)
    if (target instanceof Response) return target
    const q = ctx.url.searchParams
    const format = q.get('format') ?? 'token'
    if (format !== 'nonce' && format !== 'token')
      return formError('form_param_value_invalid', 'format', 'format must be one of: nonce, token.')
    const suffixedParam = q.get('suffixed_cookies')
    if (suffixedParam !== null && suffixedParam !== 'true' && suffixedParam !== 'false')
      return formError('form_param_value_invalid', 'suffixed_cookies', 'suffixed_cookies must be true or false.')
    // A development browser without a (known) dev browser gets one: that is how it first meets Clerk.
    const client = clientOf(ctx) ?? (dev ? deps.clients.create({ devBrowser: true }) : null)
    const session = client?.sessionId ? deps.sessions.mint(client.sessionId) : null
    deps.onHandshake(q.get('__clerk_hs_reason') ?? 'unknown')
    const directives = handshakeDirectives({
      session,
      clientUat: client?.updatedAt ?? 0,
      suffix: deps.suffix,
      suffixed: suffixedParam === 'true',
      devBrowser: client?.devBrowser ?? null,
      ...plain,
    })
    const name = format === 'nonce' ? HANDSHAKE.nonce : HANDSHAKE.token
    const value = format === 'nonce' ? deps.nonces.put(directives) : handshakeToken(deps.key, directives, deps.now())
    if (!dev) return redirect(target, [setCookie(name, value, { ...plain, httpOnly: true, maxAgeSeconds: HANDOFF_SECONDS })], 307)
    target.searchParams.set(HANDSHAKE.devBrowser, client!.devBrowser!)
    target.searchParams.set(name, value)
    return redirect(target, [], 307)
  }

  /** `POST /v1/dev_browser` (development instances): a new dev browser, `{ id }` as Clerk's browser SDK reads it. */
  function devBrowser(): Response {
    if (!dev) return clerkErrors(404, 'resource_not_found', 'Dev browsers exist only on development instances.')
    const client = deps.clients.create({ devBrowser: true })
    return Response.json({ object: 'dev_browser', id: client.devBrowser }, { headers: { 'Cache-Control': 'no-store' } })
  }

  const routes: Route[] = [
    { method: 'GET', path: /^(.*)\/sign-in$/, run: signIn },
    { method: 'GET', path: /^(.*)\/sign-out$/, run: signOutPage },
    { method: 'GET', path: /^(.*)\/v1\/client\/handshake$/, run: handshake },
    { method: 'POST', path: /^(.*)\/v1\/client\/sessions\/([^/]+)\/end$/, run: endSession },
    { method: 'POST', path: /^(.*)\/v1\/dev_browser$/, run: devBrowser },
  ]

  return async (request) => {
    const url = new URL(request.url)
    for (const route of routes) {
      const match = route.path.exec(url.pathname)
      if (!match) continue
      if (request.method !== route.method) return clerkErrors(405, 'method_not_allowed', `Use ${route.method}`)
      const cookies = parseCookies(request.headers.get('cookie'))
      return route.run({ url, mount: match[1]!, cookies, request }, match)
    }
    return clerkErrors(404, 'resource_not_found', 'Not found')
  }
}
