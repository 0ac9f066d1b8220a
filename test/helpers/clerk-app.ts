/**
 * A real Clerk app on 127.0.0.1: Express 5, Clerk's own `clerkMiddleware()` (`@clerk/express`)
 * with the Frontend API at `/__clerk` (the emulator's `frontendHandler`, mounted before the
 * middleware as Clerk's own proxy is), session-keeper's proxy at `/api/session/refresh`, and a
 * protected `/api/me` and page `/` that answer from `getAuth(req)`. Or the same app on bare
 * `node:http` with `@clerk/backend`'s `authenticateRequest` in place of the middleware, its
 * answer applied as `clerkMiddleware` applies it. The emulator's Backend API runs on its own port. A `Browser` drives it with Node's fetch and a cookie jar, following
 * redirects by hand so that every hop (and every handshake) is seen.
 *
 * For real browsers (Express only): `page` makes `/` a page with the `<script>` build
 * (`dist/session-keeper.iife.js`, served before the middleware as static assets are), and
 * `traffic` records every answer of the app (status, Clerk's auth reason, the redirect-loop count
 * it set).
 */
import { createClerkClient } from '@clerk/backend'
import { clerkMiddleware, getAuth } from '@clerk/express'
import express from 'express'
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { createRefreshHandler, toNodeHandler, type RefreshEvent, type RefreshHandlerOptions } from '../../src/server/index.js'
import { createClerkEmulator, type ClerkEmulatorOptions, type InstanceType } from '../../src/testing/index.js'
import { IIFE_PATH } from './app.js'
import { CookieJar } from './cookie-jar.js'
import { claimsOf } from './jwt.js'
import { close, listen } from './servers.js'

export const CHROME_UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36'
const MAX_HOPS = 10

export interface ClerkAppOptions {
  instanceType: InstanceType
  /** `'express'`: `@clerk/express` `clerkMiddleware()`; `'backend'`: `@clerk/backend` `authenticateRequest`. @default 'express' */
  middleware?: 'express' | 'backend'
  /** CLERK_SECRET_KEY for the middleware's own Backend API calls. @default the emulator's secret key */
  envSecretKey?: string
  emulator?: Omit<ClerkEmulatorOptions, 'instanceType'>
  proxy?: Partial<RefreshHandlerOptions>
  /**
   * `/` is a page with `head` (page script), then the `<script>` build with these `data-*`
   * options (`script: false`: without it, cookies only). Express only.
   */
  page?: { dataset?: Record<string, string>; head?: string; script?: boolean }
}

/** One answer of the app, as the browser got it. */
export interface Hit {
  /** When the answer finished (ms, Date.now). */
  at: number
  /** When the request arrived. */
  arrivedAt: number
  method: string
  path: string
  status: number
  /** Clerk's middleware's `x-clerk-auth-reason`, when it gave one. */
  reason: string | null
  /** The `__clerk_redirect_count` this answer set (Clerk's handshake-loop guard), or null. */
  redirectCount: number | null
  location: string | null
}

/**
 * Moves `Date.now` (and so the emulator's clock, the proxy's and the one Clerk's SDK verifies
 * tokens with) by `offsetMs`; real time keeps passing. `restore()` puts the real clock back.
 */
export function shiftableClock() {
  const real = Date.now.bind(Date)
  let offsetMs = 0
  Date.now = () => real() + offsetMs
  return {
    advance(ms: number) {
      offsetMs += ms
    },
    restore() {
      Date.now = real
    },
  }
}

export async function startClerkApp(options: ClerkAppOptions) {
  const clerk = createClerkEmulator({ instanceType: options.instanceType, ...options.emulator })
  const servers: Server[] = []
  const apiServer = createServer(toNodeHandler(clerk.handler, { maxBodyBytes: 1 << 20 }))
  servers.push(apiServer)
  const apiUrl = await listen(apiServer)

  // Clerk's middleware makes its own Backend API calls (its refresh, the handshake payload) with
  // CLERK_SECRET_KEY from the environment, read when the middleware is created: its `secretKey`
  // option only reaches token verification (the JWKS). Telemetry off: nothing leaves 127.0.0.1.
  const savedEnv = { secret: process.env.CLERK_SECRET_KEY, telemetry: process.env.CLERK_TELEMETRY_DISABLED }
  process.env.CLERK_SECRET_KEY = options.envSecretKey ?? clerk.secretKey
  process.env.CLERK_TELEMETRY_DISABLED = '1'

  const events: RefreshEvent[] = []
  const proxy = createRefreshHandler({
    secretKey: clerk.secretKey,
    publishableKey: clerk.publishableKey,
    apiUrl,
    onEvent: (event) => events.push(event),
    ...options.proxy,
  })
  const traffic: Hit[] = []
  const appServer = createServer(
    options.middleware === 'backend' ? backendApp(clerk, apiUrl, proxy) : expressApp(clerk, apiUrl, proxy, { page: options.page, traffic }),
  )
  servers.push(appServer)
  const origin = await listen(appServer)

  return {
    clerk,
    apiUrl,
    origin,
    events,
    /** Every answer of the Express app (not the Frontend API's), oldest first. */
    traffic,
    /** Refresh calls that reached Clerk, by caller: Clerk's middleware or session-keeper's proxy. */
    refreshCalls() {
      const calls = clerk.requests().filter((r) => r.path.endsWith('/refresh'))
      const by = (ua: string) => calls.filter((r) => r.userAgent?.startsWith(ua))
      return { middleware: by('@clerk/express'), proxy: by('session-keeper') }
    },
    browser: (jar = new CookieJar()) => new Browser(origin, jar),
    async close() {
      await Promise.all(servers.map(close))
      process.env.CLERK_SECRET_KEY = savedEnv.secret
      process.env.CLERK_TELEMETRY_DISABLED = savedEnv.telemetry
      if (savedEnv.secret === undefined) delete process.env.CLERK_SECRET_KEY
      if (savedEnv.telemetry === undefined) delete process.env.CLERK_TELEMETRY_DISABLED
    },
  }
}

export type ClerkApp = Awaited<ReturnType<typeof startClerkApp>>

type Emulator = ReturnType<typeof createClerkEmulator>
type Auth = { userId: string | null; sessionId: string | null }

const page = ({ userId, sessionId }: Auth) =>
  userId ? `<p data-user="${userId}" data-session="${sessionId}">signed in</p>` : '<p>signed out</p>'

function expressApp(
  clerk: Emulator,
  apiUrl: string,
  proxy: ReturnType<typeof createRefreshHandler>,
  { page: withScript, traffic }: { page: ClerkAppOptions['page']; traffic: Hit[] },
) {
  const app = express()
  app.use((req, res, next) => {
    const arrivedAt = Date.now()
    const path = req.path // before a mounted handler strips its prefix
    res.on('finish', () => {
      // Clerk's Frontend API is not the app; its hosted sign-out page is kept, for when it ended the session.
      if (path.startsWith('/__clerk/') && path !== '/__clerk/sign-out') return
      const reason = res.getHeader('x-clerk-auth-reason')
      const cookies = res.getHeader('set-cookie')
      const count = (Array.isArray(cookies) ? cookies : [String(cookies ?? '')])
        .map((c) => /^__clerk_redirect_count=(\d+)/.exec(c)?.[1])
        .find((v) => v !== undefined)
      traffic.push({
        at: Date.now(),
        arrivedAt,
        method: req.method,
        path,
        status: res.statusCode,
        reason: typeof reason === 'string' ? reason : null,
        redirectCount: count === undefined ? null : Number(count),
        location: typeof res.getHeader('location') === 'string' ? (res.getHeader('location') as string) : null,
      })
    })
    next()
  })
  app.use('/__clerk', toNodeHandler(clerk.frontendHandler))
  if (withScript) {
    app.get('/session-keeper.iife.js', (_req, res) => void res.type('text/javascript').send(readFileSync(IIFE_PATH)))
  }
  app.use(clerkMiddleware({ publishableKey: clerk.publishableKey, secretKey: clerk.secretKey, apiUrl, proxyUrl: '/__clerk' }))
  app.post('/api/session/refresh', toNodeHandler(proxy))
  app.all('/api/me', (req, res) => {
    res.set('Cache-Control', 'no-store') // a browser's fetch would otherwise revalidate (304)
    const { userId, sessionId } = getAuth(req)
    if (!userId) return void res.status(401).json({ signedIn: false })
    res.json({ signedIn: true, userId, sessionId })
  })
  const script = withScript ? scriptPage(withScript) : ''
  app.get(
    '/',
    (req, res) =>
      void res
        .type('html')
        .set('Cache-Control', 'no-store')
        .send(script + page(getAuth(req))),
  )
  return app
}

/** The head of a page with the `<script>` build, as an app includes it. */
function scriptPage({ dataset = {}, head = '', script = true }: NonNullable<ClerkAppOptions['page']>): string {
  const headScript = head ? `<script>${head}</script>` : ''
  if (!script) return `<!doctype html><title>a Clerk app</title>${headScript}`
  const attributes = Object.entries({ endpoint: '/api/session/refresh', ...dataset })
    .map(([k, v]) => `data-${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}="${v}"`)
    .join(' ')
  return `<!doctype html><title>a Clerk app</title>${headScript}<script src="/session-keeper.iife.js" ${attributes}></script>`
}

/** The same app without Express: `authenticateRequest`'s headers applied as `clerkMiddleware` applies them. */
function backendApp(clerk: Emulator, apiUrl: string, proxy: ReturnType<typeof createRefreshHandler>) {
  const { publishableKey, secretKey } = clerk
  const sdk = createClerkClient({ secretKey, publishableKey, apiUrl, telemetry: { disabled: true } })
  return toNodeHandler(async (request: Request) => {
    const { pathname } = new URL(request.url)
    if (pathname.startsWith('/__clerk/')) return clerk.frontendHandler(request)
    const state = await sdk.authenticateRequest(request, { publishableKey, proxyUrl: '/__clerk' })
    const headers = new Headers(state.headers)
    if (headers.get('location')) return new Response(null, { status: 307, headers })
    if (state.status === 'handshake') return new Response('handshake without a redirect', { status: 500 })
    let response: Response
    const auth = state.toAuth() as Auth
    if (pathname === '/api/session/refresh' && request.method === 'POST') response = await proxy(request)
    else if (pathname === '/api/me') {
      const body = auth.userId ? { signedIn: true, userId: auth.userId, sessionId: auth.sessionId } : { signedIn: false }
      response = Response.json(body, { status: auth.userId ? 200 : 401 })
    } else if (pathname === '/' && request.method === 'GET')
      response = new Response(page(auth), { headers: { 'content-type': 'text/html' } })
    else response = new Response('not found', { status: 404 })
    for (const cookie of headers.getSetCookie()) response.headers.append('Set-Cookie', cookie)
    return response
  })
}

export interface Navigation {
  status: number
  url: URL
  body: string
  /** Every URL requested, in order (the first is the page asked for). */
  hops: URL[]
  /** Hops through the Frontend API's handshake. */
  handshakes: number
  /** `__clerk_redirect_count` after each hop (undefined: not set). */
  redirectCounts: (string | undefined)[]
}

/** One browser: a cookie jar and the three kinds of request a page makes. */
export class Browser {
  /** Cookies as they were when this request left (see `inFlight`), used for the first request only. */
  #departed: CookieJar | null

  constructor(
    readonly origin: string,
    readonly jar: CookieJar,
    departed: CookieJar | null = null,
  ) {
    this.#departed = departed
  }

  async #send(url: URL, init: RequestInit & { headers: Record<string, string> }): Promise<Response> {
    const cookie = (this.#departed ?? this.jar).header(url)
    this.#departed = null
    const response = await fetch(url, { ...init, redirect: 'manual', headers: { ...init.headers, ...(cookie ? { cookie } : {}) } })
    this.jar.store(response, url)
    return response
  }

  /** A page load (`Sec-Fetch-Dest: document`), redirects followed by hand (at most 10). */
  async navigate(path: string): Promise<Navigation> {
    let url = new URL(path, this.origin)
    const hops: URL[] = []
    const redirectCounts: (string | undefined)[] = []
    for (let hop = 0; hop < MAX_HOPS; hop++) {
      hops.push(url)
      const response = await this.#send(url, {
        headers: {
          accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
          'sec-fetch-dest': 'document',
          'sec-fetch-mode': 'navigate',
          'user-agent': CHROME_UA,
        },
      })
      redirectCounts.push(this.jar.get('__clerk_redirect_count'))
      const location = response.headers.get('location')
      if (response.status < 300 || response.status >= 400 || !location) {
        const handshakes = hops.filter((u) => u.pathname.endsWith('/v1/client/handshake')).length
        return { status: response.status, url, body: await response.text(), hops, handshakes, redirectCounts }
      }
      await response.body?.cancel()
      url = new URL(location, url)
    }
    throw new Error(`navigate(${path}): more than ${MAX_HOPS} redirects: ${hops.map((u) => u.pathname).join(' → ')}`)
  }

  /** A script's `fetch` (`Sec-Fetch-Dest: empty`): never eligible for Clerk's handshake. */
  async api(
    method: 'GET' | 'POST',
    path = '/api/me',
  ): Promise<{ status: number; body: any; location: string | null; setCookies: string[] }> {
    const url = new URL(path, this.origin)
    const response = await this.#send(url, {
      method,
      headers: { accept: 'application/json', 'sec-fetch-dest': 'empty', 'sec-fetch-mode': 'cors', 'user-agent': CHROME_UA },
    })
    const text = await response.text()
    const setCookies = response.headers.getSetCookie()
    return { status: response.status, body: text ? JSON.parse(text) : null, location: response.headers.get('location'), setCookies }
  }

  /** What session-keeper's agent sends: the `__session` cookie's token to the proxy. */
  async refresh(token = this.jar.get('__session')): Promise<{ status: number; body: any; setCookies: string[] }> {
    const url = new URL('/api/session/refresh', this.origin)
    const sessionId = token ? claimsOf(token).sid : ''
    const response = await this.#send(url, {
      method: 'POST',
      headers: { origin: this.origin, 'content-type': 'application/json', 'user-agent': CHROME_UA },
      body: JSON.stringify({ session_id: sessionId, expired_token: token }),
    })
    return { status: response.status, body: await response.json(), setCookies: response.headers.getSetCookie() }
  }

  /** What Clerk's browser SDK calls on `signOut()`: `POST /__clerk/v1/client/sessions/{id}/end`. */
  async signOut(sessionId = this.session()?.sid ?? 'none'): Promise<{ status: number; body: any }> {
    const url = new URL(`/__clerk/v1/client/sessions/${sessionId}/end`, this.origin)
    const response = await this.#send(url, { method: 'POST', headers: { origin: this.origin, 'user-agent': CHROME_UA } })
    return { status: response.status, body: await response.json() }
  }

  /**
   * A request that leaves now and is answered later: it carries the cookies as they are now,
   * whatever lands in the jar meanwhile, and what its answer sets lands in this browser's jar.
   */
  inFlight(): Browser {
    return new Browser(this.origin, this.jar, this.jar.clone())
  }

  /** Clerk's hosted sign-in, then back to `/`. */
  signIn(userId = 'user_alice', redirectPath = '/'): Promise<Navigation> {
    const target = new URL(redirectPath, this.origin).href
    return this.navigate(`/__clerk/sign-in?redirect_url=${encodeURIComponent(target)}&user_id=${userId}`)
  }

  /** The `sid` and `iat` of the `__session` cookie, or null. */
  session(): { sid: string; iat: number; exp: number; raw: string } | null {
    const raw = this.jar.get('__session')
    if (!raw) return null
    const { sid, iat, exp } = claimsOf(raw)
    return { sid, iat, exp, raw }
  }
}
