import { timingSafeEqual } from 'node:crypto'
import { cookieSuffixSync, createSigningKey, publicJwk, randomId, signJwt, verifyJwt } from './jwt.js'
import { clerkErrors, validateRefreshBody, type RefreshBody } from './validate.js'

export interface ClerkEmulatorOptions {
  /** Lifetime of issued session tokens. @default 60 */
  tokenLifetimeSeconds?: number
  /** The secret key callers must present as `Authorization: Bearer …`. @default 'sk_test_emulator' */
  secretKey?: string
  /** Publishable key from which the cookie suffix is derived. @default 'pk_test_emulator' */
  publishableKey?: string
  /** `iss` claim. @default 'https://clerk.emulator.local' */
  issuer?: string
  /** The emulator's clock, ms since epoch. @default Date.now */
  now?: () => number
  /** Refuse (400 `session_token_not_expired`) to refresh a token before its `exp`. @default false */
  rejectUnexpiredTokens?: boolean
  /** Mark the cookies of `createSession` `Secure`. @default true */
  secureCookies?: boolean
}

export interface EmulatorFaults {
  /** Delay before every answer. */
  latencyMs?: number
  /** Fail the next N refresh calls with `failStatus`. */
  failNext?: number
  /** @default 503 */
  failStatus?: number
  /** Sent as `Retry-After` with injected failures. */
  retryAfterSeconds?: number
  /** Drop the connection of the next N refresh calls (no answer at all). */
  dropNext?: number
}

export interface EmulatedSession {
  sessionId: string
  userId: string
  sessionToken: string
  refreshToken: string
  /** Set-Cookie directives as Clerk's handshake sets them on the app's domain. */
  cookies: string[]
}

export interface EmulatorStats {
  /** Successful refreshes. */
  refreshes: number
  /** Refresh calls answered 4xx (validation, auth, revoked, mismatched). */
  rejected: number
  /** Refresh calls failed or dropped by fault injection. */
  faulted: number
  /** Successful refreshes per session. */
  bySession: Record<string, number>
}

interface SessionRecord {
  userId: string
  refreshToken: string
  revoked: boolean
}

const REFRESH_PATH = /\/v1\/sessions\/([^/]+)\/refresh$/

/** A local stand-in for Clerk's Backend API: `/v1/sessions/{id}/refresh` and `/v1/jwks`. */
export function createClerkEmulator(options: ClerkEmulatorOptions = {}) {
  const key = createSigningKey()
  const settings = {
    lifetimeSeconds: options.tokenLifetimeSeconds ?? 60,
    rejectUnexpiredTokens: options.rejectUnexpiredTokens ?? false,
  }
  const secretKey = options.secretKey ?? 'sk_test_emulator'
  const publishableKey = options.publishableKey ?? 'pk_test_emulator'
  const issuer = options.issuer ?? 'https://clerk.emulator.local'
  const now = options.now ?? (() => Date.now())
  const suffix = cookieSuffixSync(publishableKey)
  const secure = (options.secureCookies ?? true) ? '; Secure' : ''
  const sessions = new Map<string, SessionRecord>()
  let faults: EmulatorFaults = {}
  const counts: EmulatorStats = { refreshes: 0, rejected: 0, faulted: 0, bySession: {} }

  function issue(sessionId: string, userId: string, origin = 'http://localhost'): string {
    const iat = Math.floor(now() / 1000)
    return signJwt(key, {
      azp: origin, exp: iat + settings.lifetimeSeconds, iat, iss: issuer, nbf: iat - 10, sid: sessionId, sub: userId, v: 2,
    })
  }

  function sessionCookies(jwt: string): string[] {
    return [`__session=${jwt}`, `__session_${suffix}=${jwt}`].map((c) => `${c}; Path=/${secure}; SameSite=Lax`)
  }

  function reject(response: Response): Response {
    counts.rejected++
    return response
  }

  async function refresh(request: Request, sessionId: string): Promise<Response> {
    const auth = request.headers.get('authorization') ?? ''
    if (!safeEqual(auth, `Bearer ${secretKey}`)) {
      return reject(clerkErrors(401, 'authentication_invalid', 'The secret key is missing or invalid'))
    }
    if (faults.dropNext) {
      faults.dropNext--
      counts.faulted++
      return Response.error()
    }
    if (faults.failNext) {
      faults.failNext--
      counts.faulted++
      const headers: Record<string, string> = faults.retryAfterSeconds ? { 'Retry-After': String(faults.retryAfterSeconds) } : {}
      return clerkErrors(faults.failStatus ?? 503, 'injected_failure', 'Failure injected by the emulator', headers)
    }
    if (!(request.headers.get('content-type') ?? '').includes('application/json')) {
      return reject(clerkErrors(400, 'request_body_invalid', 'The body must be JSON'))
    }
    let parsed: unknown
    try {
      parsed = await request.json()
    } catch {
      return reject(clerkErrors(400, 'request_body_invalid', 'The body is not valid JSON'))
    }
    const body = validateRefreshBody(parsed)
    if (body instanceof Response) return reject(body)
    const session = sessions.get(sessionId)
    if (!session) return reject(clerkErrors(404, 'resource_not_found', 'Session not found'))
    const failure = checkTokens(body, sessionId, session)
    if (failure) return reject(failure)

    const jwt = issue(sessionId, session.userId, body.request_origin)
    counts.refreshes++
    counts.bySession[sessionId] = (counts.bySession[sessionId] ?? 0) + 1
    const payload = body.format === 'cookie' ? { object: 'cookies', cookies: sessionCookies(jwt) } : { object: 'token', jwt }
    return Response.json(payload, { headers: { 'Cache-Control': 'no-store' } })
  }

  function checkTokens(body: RefreshBody, sessionId: string, session: SessionRecord): Response | null {
    if (session.revoked) return clerkErrors(401, 'session_revoked', 'The session was revoked')
    if (!safeEqual(body.refresh_token, session.refreshToken)) {
      return clerkErrors(401, 'refresh_token_invalid', 'The refresh token does not belong to this session')
    }
    const claims = verifyJwt(key, body.expired_token)
    if (!claims) return clerkErrors(401, 'token_invalid', 'The session token signature is invalid')
    if (claims.sid !== sessionId) return clerkErrors(401, 'token_invalid', 'The session token belongs to another session')
    const current = now()
    if (typeof claims.iat !== 'number' || claims.iat * 1000 > current + 5000) {
      return clerkErrors(401, 'token_iat_in_the_future', 'JWT issued at date claim (iat) is in the future')
    }
    if (settings.rejectUnexpiredTokens && typeof claims.exp === 'number' && claims.exp * 1000 > current) {
      return clerkErrors(400, 'session_token_not_expired', 'The session token has not expired yet')
    }
    return null
  }

  async function handler(request: Request): Promise<Response> {
    const path = new URL(request.url).pathname
    if (faults.latencyMs) await new Promise((resolve) => setTimeout(resolve, faults.latencyMs))
    if (request.method === 'GET' && path.endsWith('/v1/jwks')) return Response.json({ keys: [publicJwk(key)] })
    const match = REFRESH_PATH.exec(path)
    if (!match) return clerkErrors(404, 'resource_not_found', 'Not found')
    if (request.method !== 'POST') return clerkErrors(405, 'method_not_allowed', 'Use POST')
    return refresh(request, decodeURIComponent(match[1]))
  }

  return {
    /** Serves `POST /v1/sessions/{id}/refresh` and `GET /v1/jwks` (under any path prefix). */
    handler,
    /** `fetch` into the emulator without a socket; a dropped connection rejects like a network error. */
    fetch: async (input: Request | string | URL, init?: RequestInit): Promise<Response> => {
      const response = await handler(input instanceof Request && !init ? input : new Request(input, init))
      if (response.type === 'error') throw new TypeError('fetch failed: connection dropped by the emulator')
      return response
    },
    createSession({ userId = randomId('user_') }: { userId?: string } = {}): EmulatedSession {
      const sessionId = randomId('sess_')
      const refreshToken = randomId('', 32)
      sessions.set(sessionId, { userId, refreshToken, revoked: false })
      const sessionToken = issue(sessionId, userId)
      const cookies = [
        ...sessionCookies(sessionToken),
        `__refresh_${suffix}=${refreshToken}; Path=/; HttpOnly${secure}; SameSite=Lax`,
        `__client_uat=${Math.floor(now() / 1000)}; Path=/${secure}; SameSite=Lax`,
      ]
      return { sessionId, userId, sessionToken, refreshToken, cookies }
    },
    revokeSession(sessionId: string): boolean {
      const session = sessions.get(sessionId)
      if (session) session.revoked = true
      return session !== undefined
    },
    setFaults(next: EmulatorFaults): void {
      faults = { ...faults, ...next }
    },
    clearFaults(): void {
      faults = {}
    },
    /** Changes the lifetime of tokens issued from now on, or the unexpired-token policy. */
    configure(next: { tokenLifetimeSeconds?: number; rejectUnexpiredTokens?: boolean }): void {
      if (next.tokenLifetimeSeconds !== undefined) settings.lifetimeSeconds = next.tokenLifetimeSeconds
      if (next.rejectUnexpiredTokens !== undefined) settings.rejectUnexpiredTokens = next.rejectUnexpiredTokens
    },
    stats(): EmulatorStats {
      return { ...counts, bySession: { ...counts.bySession } }
    },
    resetStats(): void {
      Object.assign(counts, { refreshes: 0, rejected: 0, faulted: 0, bySession: {} })
    },
    secretKey,
    publishableKey,
    cookieSuffix: suffix,
  }
}

export type ClerkEmulator = ReturnType<typeof createClerkEmulator>

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}
