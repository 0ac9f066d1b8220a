import { createHash, timingSafeEqual } from 'node:crypto'
import { frontendApiOf } from '../server/cookies.js'
import { clerkErrors, formError, validateRefreshBody, type RefreshBody, type RefreshErrorCode } from './catalogue.js'
import { createClients } from './clients.js'
import { createFrontendApi } from './frontendApi.js'
import { createNonces } from './handshake.js'
import { cookieSuffixSync, createSigningKey, publicJwk, publishableKeyFor, randomId, signJwt, verifyJwt } from './jwt.js'
import type { ClerkEmulatorOptions, EmulatedSession, EmulatorFaults, EmulatorStats, InstanceType, RecordedRequest } from './types.js'

export type { ClerkEmulatorOptions, EmulatedSession, EmulatorFaults, EmulatorStats, InstanceType, RecordedRequest } from './types.js'

interface SessionRecord {
  userId: string
  origin: string
  refreshToken: string
  active: boolean
}

const REFRESH_PATH = /\/v1\/sessions\/([^/]+)\/refresh$/
const RECORDED_MAX = 1_000
const DAY_SECONDS = 86_400
const KEY_PREFIX: Record<InstanceType, string> = { production: 'pk_live_', development: 'pk_test_' }

/** The instance type asked for, or the publishable key's; a contradiction is a TypeError now. */
function instanceTypeOf(options: ClerkEmulatorOptions): InstanceType {
  const { instanceType, publishableKey } = options
  if (instanceType !== undefined && instanceType !== 'production' && instanceType !== 'development') {
    throw new TypeError(`createClerkEmulator: \`instanceType\` must be 'production' or 'development', not ${JSON.stringify(instanceType)}`)
  }
  const fromKey = publishableKey?.startsWith('pk_live_') ? 'production' : publishableKey === undefined ? undefined : 'development'
  if (instanceType && fromKey && instanceType !== fromKey) {
    throw new TypeError(`createClerkEmulator: a ${instanceType} instance needs a ${KEY_PREFIX[instanceType]}… publishable key`)
  }
  return instanceType ?? fromKey ?? 'development'
}

/**
 * A local stand-in for Clerk: the Backend API (`/v1/sessions/{id}/refresh`, `/v1/jwks`,
 * `/v1/clients/handshake_payload`) in `handler`, and the part of the Frontend API that Clerk's
 * server-side middleware meets (hosted sign-in and sign-out, the handshake, dev browsers) in
 * `frontendHandler`.
 */
export function createClerkEmulator(options: ClerkEmulatorOptions = {}) {
  const key = createSigningKey()
  const settings = {
    lifetimeSeconds: options.tokenLifetimeSeconds ?? 60,
    unexpiredTokens: options.unexpiredTokens ?? 'refuse',
  }
  const maxAgeMs = (options.expiredTokenMaxAgeSeconds ?? DAY_SECONDS) * 1000
  const instanceType = instanceTypeOf(options)
  const production = instanceType === 'production'
  const secretKey = options.secretKey ?? (production ? 'sk_live_emulator' : 'sk_test_emulator')
  const publishableKey = options.publishableKey ?? publishableKeyFor('clerk.emulator.local', production ? 'live' : 'test')
  const frontendApi = frontendApiOf(publishableKey)
  if (!frontendApi) throw new TypeError('createClerkEmulator: `publishableKey` is not a Clerk publishable key')
  const issuer = `https://${frontendApi}`
  const now = options.now ?? (() => Date.now())
  const suffix = cookieSuffixSync(publishableKey)
  const secure = (options.secureCookies ?? true) ? '; Secure' : ''
  const sessions = new Map<string, SessionRecord>()
  const deletedUsers = new Set<string>()
  /** Expired tokens already used for a refresh (hash → exp ms), kept until too old to matter. */
  const consumed = new Map<string, number>()
  const recorded: RecordedRequest[] = []
  let faults: EmulatorFaults = {}
  const counts: EmulatorStats = emptyStats()
  const clients = createClients(now)
  const nonces = createNonces(now)

  function issue(sessionId: string, record: SessionRecord): string {
    const iat = Math.floor(now() / 1000)
    return signJwt(key, {
      azp: record.origin,
      exp: iat + settings.lifetimeSeconds,
      fva: [0, -1],
      iat,
      iss: issuer,
      jti: randomId('', 10),
      nbf: iat - 10,
      sid: sessionId,
      sub: record.userId,
      v: 2,
    })
  }

  const cookie = (name: string, value: string) => `${name}=${value}; Path=/${secure}; SameSite=Lax`

  function refuse(code: string, message: string, status = 401): Response {
    counts.rejected++
    counts.byCode[code] = (counts.byCode[code] ?? 0) + 1
    return clerkErrors(status, code, message)
  }

  async function refresh(request: Request, sessionId: string): Promise<Response> {
    const auth = request.headers.get('authorization') ?? ''
    if (!auth.startsWith('Bearer ')) return refuse('authorization_header_format_invalid', 'Invalid Authorization header format')
    if (!safeEqual(auth, `Bearer ${secretKey}`)) return refuse('clerk_key_invalid', 'The provided Clerk Secret Key is invalid.')
    if (faults.dropNext) {
      faults.dropNext--
      counts.faulted++
      return Response.error()
    }
    if (faults.failNext) {
      faults.failNext--
      counts.faulted++
      const headers: Record<string, string> = faults.retryAfterSeconds ? { 'Retry-After': String(faults.retryAfterSeconds) } : {}
      const status = faults.failStatus ?? 503
      const code = faults.failCode ?? (status === 429 ? 'too_many_requests' : 'internal_clerk_error')
      return clerkErrors(status, code, 'Failure injected by the emulator', headers)
    }
    let parsed: unknown
    try {
      parsed = await request.json()
    } catch {
      return refuse('request_body_invalid', 'The request body is invalid.', 400)
    }
    const body = validateRefreshBody(parsed)
    if (body instanceof Response) {
      counts.rejected++
      return body
    }
    const refusal = checkRefresh(body, sessionId)
    if (refusal) return refuse(refusal.code, refusal.message)

    const record = sessions.get(sessionId)!
    consumed.set(tokenHash(body.expired_token), now())
    const jwt = issue(sessionId, record)
    counts.refreshes++
    counts.bySession[sessionId] = (counts.bySession[sessionId] ?? 0) + 1
    if (faults.dropAfterRefreshNext) {
      faults.dropAfterRefreshNext--
      counts.faulted++
      return Response.error()
    }
    const suffixed = new URL(request.url).searchParams.get('suffixed_cookies') === 'true'
    const cookies = suffixed ? [cookie('__session', jwt), cookie(`__session_${suffix}`, jwt)] : [cookie('__session', jwt)]
    const payload = body.format === 'cookie' ? { object: 'cookies', cookies } : { object: 'token', jwt }
    return Response.json(payload, { headers: { 'Cache-Control': 'no-store' } })
  }

  /** Clerk's checks, in the order that tells the caller the most specific reason. */
  function checkRefresh(body: RefreshBody, sessionId: string): { code: RefreshErrorCode; message: string } | null {
    const fail = (code: RefreshErrorCode, message: string) => ({ code, message })
    const record = sessions.get(sessionId)
    if (!record) return fail('session_refresh_session_not_found', 'No session was found with that id.')
    if (deletedUsers.has(record.userId)) return fail('session_refresh_user_not_found', 'The user of this session was not found.')
    if (!record.active) return fail('session_refresh_inactive_session', 'The session is not active.')
    const claims = verifyJwt(key, body.expired_token)
    if (!claims) return fail('expired_session_token_invalid', 'The expired session token is invalid.')
    if (typeof claims.sid !== 'string') return fail('expired_session_token_missing_sid', 'The expired session token has no sid claim.')
    if (claims.sid !== sessionId) return fail('refresh_sid_mismatch', 'The session token belongs to another session.')
    if (typeof claims.azp !== 'string') return fail('expired_session_token_missing_azp', 'The expired session token has no azp claim.')
    if (typeof claims.iat !== 'number')
      return fail('session_refresh_expired_session_token_missing_iat', 'The expired session token has no iat claim.')
    if (typeof claims.exp !== 'number')
      return fail('session_refresh_cannot_determine_session_token_age', 'The token age cannot be determined.')
    if (claims.iat * 1000 > now() + 5_000) return fail('expired_session_token_invalid', 'JWT issued at date claim (iat) is in the future.')
    if (!isOrigin(body.request_origin)) return fail('refresh_request_origin_invalid', 'request_origin is not a valid origin.')
    if (body.request_origin !== claims.azp)
      return fail('refresh_request_origin_azp_mismatch', 'request_origin does not match the azp claim.')
    if (!safeEqual(body.refresh_token, record.refreshToken)) return fail('refresh_token_not_found', 'The refresh token was not found.')
    const current = now()
    if (claims.exp * 1000 > current && settings.unexpiredTokens === 'refuse') {
      return fail('session_refresh_session_token_ineligible', 'The session token is not eligible for refresh.')
    }
    if (consumed.has(tokenHash(body.expired_token))) {
      return fail('session_refresh_expired_session_token_consumed', 'The expired session token was already used.')
    }
    if (current - claims.exp * 1000 > maxAgeMs)
      return fail('session_refresh_expired_session_token_too_old', 'The expired session token is too old.')
    return null
  }

  async function route(request: Request): Promise<Response> {
    const url = new URL(request.url)
    if (faults.latencyMs) await new Promise((resolve) => setTimeout(resolve, faults.latencyMs))
    // A caller that went away before the request was processed changed nothing (the latency
    // fault stands for the network on the way in).
    if (request.signal.aborted) return Response.error()
    if (request.method === 'GET' && url.pathname.endsWith('/v1/jwks')) {
      if (!safeEqual(request.headers.get('authorization') ?? '', `Bearer ${secretKey}`)) {
        return refuse('clerk_key_invalid', 'The provided Clerk Secret Key is invalid.')
      }
      return Response.json({ keys: [publicJwk(key)] })
    }
    if (request.method === 'GET' && url.pathname.endsWith('/v1/clients/handshake_payload')) return handshakePayload(request, url)
    const match = REFRESH_PATH.exec(url.pathname)
    if (!match) return clerkErrors(404, 'resource_not_found', 'Not found')
    if (request.method !== 'POST') return clerkErrors(405, 'method_not_allowed', 'Use POST')
    return refresh(request, decodeURIComponent(match[1]!))
  }

  /** `GET /v1/clients/handshake_payload?nonce=…` → `{ directives }`, once per nonce. */
  function handshakePayload(request: Request, url: URL): Response {
    if (!safeEqual(request.headers.get('authorization') ?? '', `Bearer ${secretKey}`)) {
      return refuse('clerk_key_invalid', 'The provided Clerk Secret Key is invalid.')
    }
    const nonce = url.searchParams.get('nonce')
    if (!nonce) return formError('form_param_missing', 'nonce', 'nonce must be included.')
    const directives = nonces.take(nonce)
    if (!directives) return clerkErrors(404, 'resource_not_found', 'No handshake payload for this nonce (unknown, used or expired).')
    return Response.json({ directives }, { headers: { 'Cache-Control': 'no-store' } })
  }

  /** A new active session; its first token is issued by whoever hands it to the browser. */
  function startSession(userId: string, origin: string): { sessionId: string; record: SessionRecord } {
    const sessionId = randomId('sess_')
    const record: SessionRecord = { userId, origin, refreshToken: randomId('', 32), active: true }
    sessions.set(sessionId, record)
    return { sessionId, record }
  }

  const frontendHandler = createFrontendApi({
    instanceType,
    now,
    key,
    suffix,
    secure: secure !== '',
    redirectOrigins: options.redirectOrigins ?? [],
    clients,
    nonces,
    sessions: {
      start: (userId, origin) => startSession(userId, origin).sessionId,
      end(sessionId) {
        const record = sessions.get(sessionId)
        if (record) record.active = false
      },
      mint(sessionId) {
        const record = sessions.get(sessionId)
        if (!record?.active || deletedUsers.has(record.userId)) return null
        return { jwt: issue(sessionId, record), refreshToken: record.refreshToken }
      },
    },
    onHandshake(reason) {
      counts.handshakes++
      counts.byHandshakeReason[reason] = (counts.byHandshakeReason[reason] ?? 0) + 1
    },
  })

  async function handler(request: Request): Promise<Response> {
    const url = new URL(request.url)
    const entry: RecordedRequest = {
      method: request.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      apiVersion: request.headers.get('clerk-api-version'),
      userAgent: request.headers.get('user-agent'),
      body: await request
        .clone()
        .json()
        .catch(() => null),
      status: 0,
      code: null,
    }
    const response = await route(request)
    entry.status = response.type === 'error' ? 0 : response.status
    if (!response.ok && response.type !== 'error') entry.code = (await response.clone().json()).errors?.[0]?.code ?? null
    recorded.push(entry)
    if (recorded.length > RECORDED_MAX) recorded.shift()
    pruneConsumed()
    // As Clerk's servers do: the time of the answer on its own clock, in whole seconds.
    if (response.type !== 'error') response.headers.set('Date', new Date(now()).toUTCString())
    return response
  }

  function pruneConsumed(): void {
    if (consumed.size < 10_000) return
    const cutoff = now() - maxAgeMs - DAY_SECONDS * 1000
    for (const [hash, at] of consumed) if (at < cutoff) consumed.delete(hash)
  }

  return {
    /**
     * Clerk's Backend API: `POST /v1/sessions/{id}/refresh`, `GET /v1/jwks` and
     * `GET /v1/clients/handshake_payload` (under any path prefix).
     */
    handler,
    /**
     * Clerk's Frontend API, mounted where the app tells Clerk's middleware it lives
     * (`clerkMiddleware({ proxyUrl: '/__clerk' })`): `GET …/sign-in?redirect_url=…[&user_id=…]`,
     * `GET …/sign-out?redirect_url=…`, `POST …/v1/client/sessions/{id}/end`,
     * `GET …/v1/client/handshake?redirect_url=…&format=nonce|token&suffixed_cookies=…` and, on
     * development instances, `POST …/v1/dev_browser`.
     */
    frontendHandler,
    /** `fetch` into the emulator without a socket; a dropped connection rejects like a network error. */
    fetch: async (input: Request | string | URL, init?: RequestInit): Promise<Response> => {
      const response = await handler(input instanceof Request && !init ? input : new Request(input, init))
      if (response.type === 'error') throw new TypeError('fetch failed: connection dropped by the emulator')
      return response
    },
    /**
     * A signed-in session, as after Clerk's handshake. `origin` is the app's origin: the tokens'
     * `azp`, which every refresh's `request_origin` must equal. @default origin 'http://localhost'
     */
    createSession({ userId = randomId('user_'), origin = 'http://localhost' }: { userId?: string; origin?: string } = {}): EmulatedSession {
      const { sessionId, record } = startSession(userId, origin)
      const sessionToken = issue(sessionId, record)
      const uat = String(Math.floor(now() / 1000))
      const cookies = [
        cookie('__session', sessionToken),
        cookie(`__session_${suffix}`, sessionToken),
        cookie('__client_uat', uat),
        cookie(`__client_uat_${suffix}`, uat),
        `__refresh_${suffix}=${record.refreshToken}; Path=/; HttpOnly${secure}; SameSite=Lax`,
      ]
      return { sessionId, userId, sessionToken, refreshToken: record.refreshToken, cookies }
    },
    /** Ends the session (as a sign-out or a revocation does): refreshes get `…_inactive_session`. */
    revokeSession(sessionId: string): boolean {
      const session = sessions.get(sessionId)
      if (session) session.active = false
      return session !== undefined
    },
    /**
     * Gives the session a new refresh token, as if another device's handshake had: the browser's
     * cookie is now unknown (`refresh_token_not_found`) until a handshake plants the new one.
     */
    rotateRefreshToken(sessionId: string): boolean {
      const session = sessions.get(sessionId)
      if (session) session.refreshToken = randomId('', 32)
      return session !== undefined
    },
    /** Deletes a user: refreshes of its sessions get `session_refresh_user_not_found`. */
    deleteUser(userId: string): void {
      deletedUsers.add(userId)
    },
    setFaults(next: EmulatorFaults): void {
      faults = { ...faults, ...next }
    },
    clearFaults(): void {
      faults = {}
    },
    /** The faults still armed (`failNext`, `dropNext` … count down as they are spent). */
    faults(): EmulatorFaults {
      return { ...faults }
    },
    /** Changes the lifetime of tokens issued from now on, or the unexpired-token policy. */
    configure(next: { tokenLifetimeSeconds?: number; unexpiredTokens?: 'refuse' | 'accept' }): void {
      if (next.tokenLifetimeSeconds !== undefined) settings.lifetimeSeconds = next.tokenLifetimeSeconds
      if (next.unexpiredTokens !== undefined) settings.unexpiredTokens = next.unexpiredTokens
    },
    get unexpiredTokens(): 'refuse' | 'accept' {
      return settings.unexpiredTokens
    },
    stats(): EmulatorStats {
      return {
        ...counts,
        bySession: { ...counts.bySession },
        byCode: { ...counts.byCode },
        byHandshakeReason: { ...counts.byHandshakeReason },
      }
    },
    resetStats(): void {
      Object.assign(counts, emptyStats())
      recorded.length = 0
    },
    /** The last requests (up to 1,000), oldest first. */
    requests(): readonly RecordedRequest[] {
      return recorded.slice()
    },
    secretKey,
    publishableKey,
    /** `'production'` (a `pk_live_` key) or `'development'` (`pk_test_`, dev browsers). */
    instanceType,
    issuer,
    cookieSuffix: suffix,
  }
}

function emptyStats(): EmulatorStats {
  return { refreshes: 0, rejected: 0, faulted: 0, bySession: {}, byCode: {}, handshakes: 0, byHandshakeReason: {} }
}

export type ClerkEmulator = ReturnType<typeof createClerkEmulator>

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

function tokenHash(jwt: string): string {
  return createHash('sha256').update(jwt).digest('base64url')
}

function isOrigin(value: string): boolean {
  try {
    const url = new URL(value)
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === value
  } catch {
    return false
  }
}
