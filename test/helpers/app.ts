import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { createRefreshHandler, type RefreshHandlerOptions, toNodeHandler } from '../../src/server/index.js'
import { createClerkEmulator, type ClerkEmulatorOptions } from '../../src/testing/index.js'
import { close, listen } from './servers.js'

/** The <script> build the pages load: dist/ by default, `SESSION_KEEPER_IIFE` for another build. */
export const IIFE_PATH = process.env.SESSION_KEEPER_IIFE ?? new URL('../../dist/session-keeper.iife.js', import.meta.url).pathname

export interface RefreshRecord {
  /** When the request reached the server (ms since epoch). */
  at: number
  token: string
  status: number
  code?: string
  /** When the proxy answered (a held request answers up to 2 s later). */
  answeredAt?: number
  /** Who answered: the proxy, the rate-limiting edge in front of it, or nobody (dropped). */
  by: 'proxy' | 'edge' | 'dropped'
}

/** A 429 window armed with `app.rateLimit()`. */
export interface RateLimit {
  retryAfterSeconds: number
  /** How long the edge answers 429, from the first request it refuses. */
  forMs: number
  /** `json`: the proxy's own `{ error: { code: 'rate_limited' } }`; `html`: an edge's or WAF's page. */
  body: 'json' | 'html'
}

/**
 * A tiny app on 127.0.0.1 for real-browser tests: `/login` sets the cookies Clerk's handshake
 * would, `/` is a bare HTML page with the <script> build, `/api/session/refresh` is the proxy in
 * front of the emulator. Every refresh request the tabs send is recorded with its answer.
 * `/junk` is a page of the same origin without the library (for hostile-script and back/forward
 * cache tests).
 *
 * In front of everything, two switches the browsers cannot provide themselves:
 * - `rateLimit()`: from the next refresh request on, an edge answers 429 with `Retry-After` for
 *   a while, without asking the proxy;
 * - `setOffline()`: every request is dropped at the socket (the network is gone, as far as the
 *   page can tell), for engines without network emulation (WebKit over WebDriver Classic).
 *
 * `head` is page script run before the library (instrumentation, as an init script would);
 * `after` is markup right after the library's script tag.
 */
export async function startApp(
  emulatorOptions: ClerkEmulatorOptions = {},
  pageOptions: { dataset?: Record<string, string>; head?: string; after?: string } = {},
  proxyOptions: Partial<RefreshHandlerOptions> = {},
) {
  const clerk = createClerkEmulator({ secureCookies: false, ...emulatorOptions })
  const handler = createRefreshHandler({
    secretKey: clerk.secretKey,
    publishableKey: clerk.publishableKey,
    apiUrl: 'http://localhost', // answered in-process by `fetch`
    fetch: clerk.fetch,
    ...proxyOptions,
  })
  const requests: RefreshRecord[] = []
  /** When the library's page (`/`) was served. */
  const pageLoads: number[] = []
  let limit: (RateLimit & { until: number | null }) | null = null
  let offline = false

  const proxy = toNodeHandler(async (request, context) => {
    const body = await request
      .clone()
      .json()
      .catch(() => ({}))
    const entry: RefreshRecord = { at: Date.now(), token: body.expired_token, status: 0, by: 'proxy' }
    requests.push(entry)
    if (limit?.until != null && entry.at >= limit.until) limit = null // the window is over
    if (limit) {
      limit.until ??= entry.at + limit.forMs
      entry.by = 'edge'
      entry.status = 429
      entry.code = limit.body === 'json' ? 'rate_limited' : undefined
      const headers = { 'Retry-After': String(limit.retryAfterSeconds), 'Cache-Control': 'no-store' }
      return limit.body === 'json'
        ? Response.json({ error: { code: 'rate_limited', message: 'Too many refreshes; retry later' } }, { status: 429, headers })
        : new Response(
            '<!doctype html><html><head><title>429 Too Many Requests</title></head><body><h1>Too Many Requests</h1></body></html>',
            {
              status: 429,
              headers: { ...headers, 'Content-Type': 'text/html' },
            },
          )
    }
    const response = await handler(request, context)
    entry.status = response.status
    entry.answeredAt = Date.now()
    if (!response.ok)
      entry.code = (
        await response
          .clone()
          .json()
          .catch(() => ({}))
      )?.error?.code
    return response
  })
  const iife = () => readFileSync(IIFE_PATH)
  const attributes = Object.entries({ endpoint: '/api/session/refresh', ...pageOptions.dataset })
    .map(([k, v]) => `data-${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}="${v}"`)
    .join(' ')
  const head = pageOptions.head ? `<script>${pageOptions.head}</script>` : ''

  let origin = ''
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://app')
    if (offline) {
      if (url.pathname === '/api/session/refresh') requests.push({ at: Date.now(), token: '', status: 0, by: 'dropped' })
      return req.socket.destroy()
    }
    if (url.pathname === '/api/session/refresh') return proxy(req, res)
    if (url.pathname === '/login') {
      const session = clerk.createSession({ userId: url.searchParams.get('user') ?? 'user_browser', origin })
      res.writeHead(302, { Location: '/', 'Set-Cookie': session.cookies })
      return res.end()
    }
    if (url.pathname === '/session-keeper.iife.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript' })
      return res.end(iife())
    }
    if (url.pathname === '/junk') {
      res.writeHead(200, { 'Content-Type': 'text/html' })
      return res.end('<!doctype html><title>another page of the origin</title><p>no library here</p>')
    }
    if (url.pathname === '/') {
      pageLoads.push(Date.now())
      res.writeHead(200, { 'Content-Type': 'text/html' })
      return res.end(
        `<!doctype html><title>bare page</title>${head}<script src="/session-keeper.iife.js" ${attributes}></script>${pageOptions.after ?? ''}<p>bare</p>`,
      )
    }
    res.writeHead(404).end()
  })
  origin = await listen(server)
  return {
    clerk,
    origin,
    requests,
    pageLoads,
    /** Arms the edge: the next refresh request and every one for `forMs` after it get 429. */
    rateLimit(options: RateLimit) {
      limit = { ...options, until: null }
    },
    /** The refresh requests that reached the server (answered by the proxy or the edge). */
    get arrived() {
      return requests.filter((r) => r.by !== 'dropped')
    },
    /** Drops every request at the socket while true. */
    setOffline(value: boolean) {
      offline = value
    },
    close: () => close(server),
  }
}

export type App = Awaited<ReturnType<typeof startApp>>
