import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Connect, HttpServer, Plugin } from 'vite'
import { createRefreshHandler, toNodeHandler } from '../src/server/index.js'
import { createClerkEmulator } from '../src/testing/index.js'
import { createClerkApp } from './clerk-app.js'

/**
 * The demo's back end, mounted into Vite's dev (and preview) server, as an app that uses Clerk's
 * own middleware would have it: Clerk's Frontend API (the emulator's, at `/__clerk`), Clerk's
 * `clerkMiddleware()` in front of the page and of `GET /api/me`, session-keeper's proxy at
 * `/api/session/refresh`, and a few buttons' worth of controls under `/demo-api`. The emulator's
 * Backend API listens on a port of its own on 127.0.0.1, where Clerk's middleware calls it.
 */
export function sessionKeeperDemo(): Plugin {
  const mount = async (server: { middlewares: Connect.Server; httpServer: HttpServer | null }) => {
    const demo = await mountDemo(server.middlewares)
    server.httpServer?.once('close', () => void demo.close())
  }
  return { name: 'session-keeper-demo', configureServer: mount, configurePreviewServer: mount }
}

type Route = (body: Record<string, unknown>, res: ServerResponse, req: IncomingMessage) => unknown

export async function mountDemo(middlewares: Connect.Server) {
  const clerk = createClerkEmulator({ instanceType: 'production', tokenLifetimeSeconds: 20, secureCookies: false })
  // Clerk's Backend API on loopback, for Clerk's middleware (its own refreshes, the handshake payload).
  let middlewareRefreshes = 0
  const backend = toNodeHandler(clerk.handler, { maxBodyBytes: 1 << 20 })
  const backendApi = createServer((req, res) => {
    if (req.method === 'POST' && (req.url ?? '').split('?')[0]!.endsWith('/refresh')) middlewareRefreshes++
    void backend(req, res)
  })
  await new Promise<void>((resolve) => backendApi.listen(0, '127.0.0.1', resolve))
  backendApi.unref() // middleware mode (no HTTP server of Vite's to follow): never keeps the process up
  const apiUrl = `http://127.0.0.1:${(backendApi.address() as AddressInfo).port}`

  // The proxy learns whether Clerk refreshes early and believes it for an hour: a new one (with a
  // new store) forgets it when the emulator's policy is switched.
  const newProxy = () =>
    toNodeHandler(
      createRefreshHandler({
        secretKey: clerk.secretKey,
        publishableKey: clerk.publishableKey,
        apiUrl: 'http://localhost', // answered in-process by `fetch` below
        fetch: clerk.fetch, // in-process: no Clerk account, nothing else to start
      }),
    )
  let proxy = newProxy()
  middlewares.use('/api/session/refresh', (req, res) => void proxy(req, res))
  middlewares.use('/__clerk', toNodeHandler(clerk.frontendHandler))
  middlewares.use(createClerkApp(clerk, apiUrl))

  /** What the controls show (every tab reads them back): the upstream's mode and the lifetime. */
  const controls = { upstream: 'normal', lifetimeSeconds: 20 }
  const routes: Record<string, Route> = {
    'POST /revoke': (body) => ({ revoked: clerk.revokeSession(String(body.sessionId)) }),
    'POST /upstream': (body) => {
      clerk.clearFaults()
      if (body.mode === 'slow') clerk.setFaults({ latencyMs: 3_000 })
      if (body.mode === 'failing') clerk.setFaults({ failNext: 3, failStatus: 503, retryAfterSeconds: 2 })
      controls.upstream = body.mode === 'slow' || body.mode === 'failing' ? body.mode : 'normal'
      return { mode: controls.upstream }
    },
    'POST /lifetime': (body) => {
      const seconds = Number(body.seconds)
      if (!Number.isInteger(seconds) || seconds < 4 || seconds > 3600) throw new Error('lifetime out of range')
      clerk.configure({ tokenLifetimeSeconds: seconds })
      controls.lifetimeSeconds = seconds
      return { seconds }
    },
    'POST /early': (body) => {
      if (body.policy !== 'accept' && body.policy !== 'refuse') throw new Error('policy must be accept or refuse')
      if (body.policy !== clerk.unexpiredTokens) proxy = newProxy()
      clerk.configure({ unexpiredTokens: body.policy })
      return { policy: body.policy }
    },
    'POST /forget-refresh-token': (body) => ({ forgotten: clerk.rotateRefreshToken(String(body.sessionId)) }),
    'GET /stats': () => {
      // "Failing" injects three failures; once they are spent, the upstream is normal again.
      if (controls.upstream === 'failing' && !clerk.faults().failNext) controls.upstream = 'normal'
      return { ...clerk.stats(), middlewareRefreshes, unexpiredTokens: clerk.unexpiredTokens, ...controls }
    },
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
  return {
    clerk,
    close: () =>
      new Promise<void>((resolve) => {
        backendApi.closeAllConnections()
        backendApi.close(() => resolve())
      }),
  }
}
