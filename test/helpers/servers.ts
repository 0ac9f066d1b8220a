import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createRefreshHandler, toNodeHandler, type RefreshEvent, type RefreshHandlerOptions } from '../../src/server/index.js'
import { createClerkEmulator, type ClerkEmulatorOptions } from '../../src/testing/index.js'

export async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

export function close(server: Server): Promise<void> {
  server.closeAllConnections()
  return new Promise((resolve) => server.close(() => resolve()))
}

/**
 * The emulator and the proxy, each on its own loopback port, as in production. `upstreamCalls`
 * counts every request that reached the emulator, whatever its answer.
 */
export async function startStack(proxyOptions: Partial<RefreshHandlerOptions> = {}, emulatorOptions: ClerkEmulatorOptions = {}) {
  const clerk = createClerkEmulator(emulatorOptions)
  const upstreamBodies: Record<string, unknown>[] = []
  let upstreamCalls = 0
  const emulatorServer = createServer(
    toNodeHandler(async (request: Request) => {
      upstreamCalls++
      if (request.method === 'POST') upstreamBodies.push(await request.clone().json().catch(() => ({})))
      return clerk.handler(request)
    }, { maxBodyBytes: 1 << 20 }),
  )
  const apiUrl = await listen(emulatorServer)
  const events: RefreshEvent[] = []
  const handler = createRefreshHandler({
    secretKey: clerk.secretKey,
    publishableKey: clerk.publishableKey,
    apiUrl,
    onEvent: (event) => events.push(event),
    ...proxyOptions,
  })
  const proxyServer = createServer(toNodeHandler(handler))
  const origin = await listen(proxyServer)
  const session = clerk.createSession({ userId: 'user_test' })
  return {
    clerk,
    handler,
    apiUrl,
    origin,
    url: `${origin}/api/session/refresh`,
    session,
    events,
    upstreamBodies,
    get upstreamCalls() {
      return upstreamCalls
    },
    refreshCookie: `__refresh_${clerk.cookieSuffix}=${session.refreshToken}`,
    /** A well-formed browser request for `session`; override any part. */
    request(init: { body?: unknown; headers?: Record<string, string>; method?: string; token?: string } = {}) {
      const body = init.body !== undefined ? init.body : { session_id: session.sessionId, expired_token: init.token ?? session.sessionToken }
      return fetch(`${origin}/api/session/refresh`, {
        method: init.method ?? 'POST',
        headers: { 'content-type': 'application/json', origin, cookie: `__refresh_${clerk.cookieSuffix}=${session.refreshToken}`, ...init.headers },
        body: init.method === 'GET' || init.method === 'HEAD' ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      })
    },
    async close() {
      await Promise.all([close(emulatorServer), close(proxyServer)])
    },
  }
}

export type Stack = Awaited<ReturnType<typeof startStack>>
