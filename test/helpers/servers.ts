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
 * counts every refresh call that reached the emulator, whatever its answer (not JWKS fetches).
 */
export async function startStack(proxyOptions: Partial<RefreshHandlerOptions> = {}, emulatorOptions: ClerkEmulatorOptions = {}) {
  // The emulator's clock can be moved back: `session` is created already expired, so that every
  // test refreshes the same way under both policies for unexpired tokens.
  let clockOffsetMs = 0
  const clerk = createClerkEmulator({ now: () => Date.now() + clockOffsetMs, ...emulatorOptions })
  const upstreamBodies: Record<string, unknown>[] = []
  let upstreamCalls = 0
  const emulatorServer = createServer(
    toNodeHandler(
      async (request: Request) => {
        if (request.method === 'POST') upstreamCalls++
        if (request.method === 'POST')
          upstreamBodies.push(
            await request
              .clone()
              .json()
              .catch(() => ({})),
          )
        return clerk.handler(request)
      },
      { maxBodyBytes: 1 << 20 },
    ),
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
  /** A session created `ageMs` ago (its first token expired when `ageMs` > the lifetime). */
  const sessionAged = (ageMs: number, userId = 'user_test') => {
    clockOffsetMs = -ageMs
    const created = clerk.createSession({ userId, origin })
    clockOffsetMs = 0
    return created
  }
  const session = sessionAged(((emulatorOptions.tokenLifetimeSeconds ?? 60) + 2) * 1000)
  return {
    clerk,
    handler,
    apiUrl,
    origin,
    url: `${origin}/api/session/refresh`,
    session,
    sessionAged,
    events,
    upstreamBodies,
    get upstreamCalls() {
      return upstreamCalls
    },
    refreshCookie: `__refresh_${clerk.cookieSuffix}=${session.refreshToken}`,
    /** A well-formed browser request for `session`; override any part. */
    request(init: { body?: unknown; headers?: Record<string, string>; method?: string; token?: string; signal?: AbortSignal } = {}) {
      const body =
        init.body !== undefined ? init.body : { session_id: session.sessionId, expired_token: init.token ?? session.sessionToken }
      return fetch(`${origin}/api/session/refresh`, {
        method: init.method ?? 'POST',
        signal: init.signal,
        headers: {
          'content-type': 'application/json',
          origin,
          cookie: `__refresh_${clerk.cookieSuffix}=${session.refreshToken}`,
          ...init.headers,
        },
        body: init.method === 'GET' || init.method === 'HEAD' ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      })
    },
    async close() {
      await Promise.all([close(emulatorServer), close(proxyServer)])
    },
  }
}

export type Stack = Awaited<ReturnType<typeof startStack>>
