import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Plugin } from 'vite'
import { createRefreshHandler, toNodeHandler } from '../src/server/index.js'
import { createClerkEmulator } from '../src/testing/index.js'

type Middleware = (req: IncomingMessage, res: ServerResponse, next: () => void) => void
interface Middlewares {
  use(path: string, handler: Middleware): unknown
}

/**
 * The demo's back end, mounted into Vite's dev (and preview) server: the Clerk emulator, the
 * real proxy in front of it, and a few buttons' worth of controls under /demo-api.
 */
export function sessionKeeperDemo(): Plugin {
  return {
    name: 'session-keeper-demo',
    configureServer: (server) => void mountDemo(server.middlewares),
    configurePreviewServer: (server) => void mountDemo(server.middlewares),
  }
}

export function mountDemo(middlewares: Middlewares) {
  const clerk = createClerkEmulator({ tokenLifetimeSeconds: 20, secureCookies: false })
  const handler = createRefreshHandler({
    secretKey: clerk.secretKey,
    publishableKey: clerk.publishableKey,
    apiUrl: 'http://localhost', // answered in-process by `fetch` below
    fetch: clerk.fetch, // in-process: no Clerk account, nothing else to start
  })
  const proxy = toNodeHandler(handler)
  middlewares.use('/api/session/refresh', (req, res) => void proxy(req, res))

  const routes: Record<string, (body: Record<string, unknown>, res: ServerResponse, req: IncomingMessage) => unknown> = {
    'POST /login': (body, res, req) => {
      // The token's azp is the page's origin, which every refresh's request_origin must equal.
      const origin = `http://${req.headers.host ?? 'localhost'}`
      const session = clerk.createSession({ userId: typeof body.user === 'string' ? body.user : undefined, origin })
      res.setHeader('Set-Cookie', session.cookies) // as Clerk's handshake sets them
      return { sessionToken: session.sessionToken }
    },
    'POST /revoke': (body) => ({ revoked: clerk.revokeSession(String(body.sessionId)) }),
    'POST /upstream': (body) => {
      clerk.clearFaults()
      if (body.mode === 'slow') clerk.setFaults({ latencyMs: 3_000 })
      if (body.mode === 'failing') clerk.setFaults({ failNext: 3, failStatus: 503, retryAfterSeconds: 2 })
      return { mode: body.mode }
    },
    'POST /lifetime': (body) => {
      const seconds = Number(body.seconds)
      if (!Number.isInteger(seconds) || seconds < 4 || seconds > 3600) throw new Error('lifetime out of range')
      clerk.configure({ tokenLifetimeSeconds: seconds })
      return { seconds }
    },
    'POST /early': (body) => {
      if (body.policy !== 'accept' && body.policy !== 'refuse') throw new Error('policy must be accept or refuse')
      clerk.configure({ unexpiredTokens: body.policy })
      return { policy: body.policy }
    },
    'POST /forget-refresh-token': (body) => ({ forgotten: clerk.rotateRefreshToken(String(body.sessionId)) }),
    'GET /stats': () => ({ ...clerk.stats(), unexpiredTokens: clerk.unexpiredTokens, failuresLeft: clerk.faults().failNext ?? 0 }),
  }

  middlewares.use('/demo-api', (req, res) => {
    const route = routes[`${req.method} ${(req.url ?? '').split('?')[0]}`]
    let raw = ''
    req.on('data', (chunk) => (raw += chunk))
    req.on('end', () => {
      try {
        if (!route) throw Object.assign(new Error('not found'), { status: 404 })
        const result = route(raw ? JSON.parse(raw) : {}, res, req)
        res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' })
        res.end(JSON.stringify(result))
      } catch (error) {
        res.writeHead((error as { status?: number }).status ?? 400, { 'Content-Type': 'application/json' })
        res.end(JSON.stringify({ error: (error as Error).message }))
      }
    })
  })
  return clerk
}
