// @vitest-environment node
import { createPublicKey, verify } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createClerkEmulator } from '../../src/testing/index.js'

const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString())

function refresh(clerk: ReturnType<typeof createClerkEmulator>, sessionId: string, body: Record<string, unknown>, secret = clerk.secretKey) {
  return clerk.handler(
    new Request(`http://clerk.test/v1/sessions/${sessionId}/refresh`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }),
  )
}

function setup(options: Parameters<typeof createClerkEmulator>[0] = {}) {
  const clerk = createClerkEmulator(options)
  const session = clerk.createSession({ userId: 'user_e' })
  const body = { expired_token: session.sessionToken, refresh_token: session.refreshToken, request_origin: 'http://localhost:5173' }
  return { clerk, session, body }
}

describe('the Clerk emulator', () => {
  it('issues RS256 tokens with Clerk\'s claims, verifiable with its JWKS', async () => {
    let now = Date.UTC(2026, 10, 26, 12)
    const { clerk, session, body } = setup({ tokenLifetimeSeconds: 30, now: () => now })
    now += 40_000
    const response = await refresh(clerk, session.sessionId, body)
    expect(response.status).toBe(200)
    const { object, jwt } = await response.json()
    expect(object).toBe('token')
    const c = claims(jwt)
    expect(c).toMatchObject({ sid: session.sessionId, sub: 'user_e', iss: 'https://clerk.emulator.local', azp: 'http://localhost:5173' })
    expect(c.iat).toBe(Math.floor(now / 1000))
    expect(c.exp - c.iat).toBe(30)
    expect(typeof c.nbf).toBe('number')
    const { keys } = await (await clerk.handler(new Request('http://clerk.test/v1/jwks'))).json()
    const [head, payload, signature] = jwt.split('.')
    const header = JSON.parse(Buffer.from(head, 'base64url').toString())
    const key = createPublicKey({ key: keys.find((k: { kid: string }) => k.kid === header.kid), format: 'jwk' })
    expect(verify('sha256', Buffer.from(`${head}.${payload}`), key, Buffer.from(signature, 'base64url'))).toBe(true)
  })

  it('hands out the cookies Clerk\'s handshake sets', () => {
    const { clerk, session } = setup()
    expect(session.cookies).toEqual([
      `__session=${session.sessionToken}; Path=/; Secure; SameSite=Lax`,
      `__session_${clerk.cookieSuffix}=${session.sessionToken}; Path=/; Secure; SameSite=Lax`,
      `__refresh_${clerk.cookieSuffix}=${session.refreshToken}; Path=/; HttpOnly; Secure; SameSite=Lax`,
      expect.stringMatching(/^__client_uat=\d+; Path=\/; Secure; SameSite=Lax$/),
    ])
  })

  it('answers in the cookie format', async () => {
    const { clerk, session, body } = setup()
    const { object, cookies } = await (await refresh(clerk, session.sessionId, { ...body, format: 'cookie' })).json()
    expect(object).toBe('cookies')
    expect(cookies[0]).toMatch(/^__session=ey[^;]+; Path=\/; Secure; SameSite=Lax$/)
  })

  it.each([
    ['no secret key', (b: object) => b, 'sk_wrong', 401, 'authentication_invalid'],
    ['an extra property', (b: object) => ({ ...b, extra: 1 }), undefined, 400, 'form_param_unknown'],
    ['no refresh_token', ({ refresh_token: _, ...b }: Record<string, unknown>) => b, undefined, 400, 'form_param_missing'],
    ['a bad format', (b: object) => ({ ...b, format: 'xml' }), undefined, 400, 'form_param_value_invalid'],
    ['request_headers as a string', (b: object) => ({ ...b, request_headers: 'x' }), undefined, 400, 'form_param_format_invalid'],
    ['another session\'s refresh token', (b: object) => ({ ...b, refresh_token: 'nope' }), undefined, 401, 'refresh_token_invalid'],
    ['a token with a forged signature', (b: Record<string, string>) => ({ ...b, expired_token: b.expired_token.slice(0, -4) + 'AAAA' }), undefined, 401, 'token_invalid'],
  ])('rejects %s', async (_, change, secret, status, code) => {
    const { clerk, session, body } = setup()
    const response = await refresh(clerk, session.sessionId, change(body as never) as Record<string, unknown>, secret)
    expect(response.status).toBe(status)
    const errors = await response.json()
    expect(errors.errors[0].code).toBe(code)
    expect(typeof errors.clerk_trace_id).toBe('string')
    expect(clerk.stats().rejected).toBe(1)
  })

  it('rejects a token of another session, a revoked session, and an unknown one', async () => {
    const { clerk, session, body } = setup()
    const other = clerk.createSession()
    expect((await refresh(clerk, other.sessionId, { ...body, refresh_token: other.refreshToken })).status).toBe(401)
    clerk.revokeSession(session.sessionId)
    expect((await (await refresh(clerk, session.sessionId, body)).json()).errors[0].code).toBe('session_revoked')
    expect((await refresh(clerk, 'sess_unknown', body)).status).toBe(404)
  })

  it('rejects a token issued in its future, as Clerk does', async () => {
    let now = Date.now()
    const { clerk, session, body } = setup({ now: () => now })
    now -= 60_000
    expect((await (await refresh(clerk, session.sessionId, body)).json()).errors[0].code).toBe('token_iat_in_the_future')
  })

  it('can refuse tokens that have not expired yet', async () => {
    let now = Date.now()
    const { clerk, session, body } = setup({ rejectUnexpiredTokens: true, now: () => now })
    expect((await refresh(clerk, session.sessionId, body)).status).toBe(400)
    now += 61_000
    expect((await refresh(clerk, session.sessionId, body)).status).toBe(200)
  })

  it('injects faults and counts refreshes per session', async () => {
    const { clerk, session, body } = setup()
    clerk.setFaults({ failNext: 2, failStatus: 429, retryAfterSeconds: 3 })
    const first = await refresh(clerk, session.sessionId, body)
    expect(first.status).toBe(429)
    expect(first.headers.get('retry-after')).toBe('3')
    expect((await refresh(clerk, session.sessionId, body)).status).toBe(429)
    expect((await refresh(clerk, session.sessionId, body)).status).toBe(200)
    clerk.setFaults({ dropNext: 2 })
    expect((await refresh(clerk, session.sessionId, body)).type).toBe('error')
    const viaFetch = clerk.fetch(`http://clerk.test/v1/sessions/${session.sessionId}/refresh`, {
      method: 'POST', headers: { authorization: `Bearer ${clerk.secretKey}` }, body: '{}',
    })
    await expect(viaFetch).rejects.toThrow(/connection dropped/)
    clerk.setFaults({ latencyMs: 100 })
    const started = performance.now()
    await refresh(clerk, session.sessionId, body)
    expect(performance.now() - started).toBeGreaterThanOrEqual(95)
    clerk.clearFaults()
    expect(clerk.stats()).toEqual({ refreshes: 2, rejected: 0, faulted: 4, bySession: { [session.sessionId]: 2 } })
  })
})
