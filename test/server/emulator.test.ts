// @vitest-environment node
import { createPublicKey, verify } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createClerkEmulator, publishableKeyFor, REFRESH_ERROR_CODES } from '../../src/testing/index.js'
import { cookieSuffix } from '../../src/server/index.js'
import { claimsOf } from '../helpers/jwt.js'

const ORIGIN = 'http://localhost:5173'

function refresh(
  clerk: ReturnType<typeof createClerkEmulator>,
  sessionId: string,
  body: Record<string, unknown>,
  secret = clerk.secretKey,
  query = '',
) {
  return clerk.handler(
    new Request(`http://clerk.test/v1/sessions/${sessionId}/refresh${query}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }),
  )
}

const codeOf = async (response: Response) => ((await response.json()) as { errors: { code: string }[] }).errors[0]!.code

/** An emulator whose clock the test moves, and a session whose first token has already expired. */
function setup(options: Parameters<typeof createClerkEmulator>[0] = {}) {
  const clock = { now: Date.UTC(2026, 10, 26, 12) }
  const clerk = createClerkEmulator({ now: () => clock.now, ...options })
  const session = clerk.createSession({ userId: 'user_e', origin: ORIGIN })
  const body = { expired_token: session.sessionToken, refresh_token: session.refreshToken, request_origin: ORIGIN }
  clock.now += 61_000
  return { clerk, session, body, clock }
}

describe('the Clerk emulator', () => {
  it("issues RS256 tokens with Clerk's claims, verifiable with its JWKS (which needs the secret key)", async () => {
    const { clerk, session, body, clock } = setup({ tokenLifetimeSeconds: 30 })
    const response = await refresh(clerk, session.sessionId, body)
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toBe('application/json')
    const { object, jwt } = await response.json()
    expect(object).toBe('token')
    const c = claimsOf(jwt)
    expect(c).toMatchObject({ sid: session.sessionId, sub: 'user_e', iss: 'https://clerk.emulator.local', azp: ORIGIN })
    expect(c.iat).toBe(Math.floor(clock.now / 1000))
    expect(c.exp - c.iat).toBe(30)
    expect((await clerk.handler(new Request('http://clerk.test/v1/jwks'))).status).toBe(401)
    const jwks = await clerk.handler(new Request('http://clerk.test/v1/jwks', { headers: { authorization: `Bearer ${clerk.secretKey}` } }))
    const { keys } = await jwks.json()
    const [head, payload, signature] = jwt.split('.')
    const header = JSON.parse(Buffer.from(head, 'base64url').toString())
    const key = createPublicKey({ key: keys.find((k: { kid: string }) => k.kid === header.kid), format: 'jwk' })
    expect(verify('sha256', Buffer.from(`${head}.${payload}`), key, Buffer.from(signature, 'base64url'))).toBe(true)
  })

  it('has a valid default publishable key that matches its issuer, and derives the suffix from it', async () => {
    const clerk = createClerkEmulator()
    expect(clerk.publishableKey).toBe(publishableKeyFor('clerk.emulator.local'))
    expect(Buffer.from(clerk.publishableKey.slice(8), 'base64').toString()).toBe('clerk.emulator.local$')
    expect(clerk.cookieSuffix).toBe(await cookieSuffix(clerk.publishableKey))
    // Clerk's test vector
    expect(await cookieSuffix('pk_live_Y2xlcmsuaW5zcGlyZWQucHVtYS03NC5sY2wuZGV2JA')).toBe('MqCvchyS')
  })

  it("plants the cookies Clerk's handshake plants", () => {
    const { clerk, session } = setup()
    const sfx = clerk.cookieSuffix
    expect(session.cookies).toEqual([
      `__session=${session.sessionToken}; Path=/; Secure; SameSite=Lax`,
      `__session_${sfx}=${session.sessionToken}; Path=/; Secure; SameSite=Lax`,
      expect.stringMatching(/^__client_uat=\d+; Path=\/; Secure; SameSite=Lax$/),
      expect.stringMatching(new RegExp(`^__client_uat_${sfx}=\\d+; Path=/; Secure; SameSite=Lax$`)),
      `__refresh_${sfx}=${session.refreshToken}; Path=/; HttpOnly; Secure; SameSite=Lax`,
    ])
  })

  it('answers in the cookie format, with suffixed cookies only when asked', async () => {
    const { clerk, session, body, clock } = setup()
    const plain = await (await refresh(clerk, session.sessionId, { ...body, format: 'cookie' })).json()
    expect(plain.object).toBe('cookies')
    expect(plain.cookies).toEqual([expect.stringMatching(/^__session=ey[^;]+; Path=\/; Secure; SameSite=Lax$/)])
    clock.now += 61_000
    const next = { ...body, expired_token: /^__session=([^;]+)/.exec(plain.cookies[0])![1], format: 'cookie' }
    const suffixed = await (await refresh(clerk, session.sessionId, next, clerk.secretKey, '?suffixed_cookies=true')).json()
    expect(suffixed.cookies).toHaveLength(2)
    expect(suffixed.cookies[1]).toMatch(new RegExp(`^__session_${clerk.cookieSuffix}=ey`))
  })

  it.each([
    ['a wrong secret key', (b: object) => b, 'sk_wrong', 401, 'clerk_key_invalid'],
    ['an extra property', (b: object) => ({ ...b, extra: 1 }), undefined, 422, 'form_param_unknown'],
    ['no refresh_token', ({ refresh_token: _, ...b }: Record<string, unknown>) => b, undefined, 422, 'form_param_missing'],
    ['a bad format', (b: object) => ({ ...b, format: 'xml' }), undefined, 422, 'form_param_value_invalid'],
    ['request_headers as a string', (b: object) => ({ ...b, request_headers: 'x' }), undefined, 422, 'form_param_format_invalid'],
    [
      'request_headers split into strings',
      (b: object) => ({ ...b, request_headers: { 'user-agent': 'x' } }),
      undefined,
      422,
      'form_param_format_invalid',
    ],
    ['an unknown refresh token', (b: object) => ({ ...b, refresh_token: 'nope' }), undefined, 401, 'refresh_token_not_found'],
    [
      'a forged signature',
      (b: Record<string, string>) => ({ ...b, expired_token: b.expired_token!.slice(0, -4) + 'AAAA' }),
      undefined,
      401,
      'expired_session_token_invalid',
    ],
    [
      'request_origin other than azp',
      (b: object) => ({ ...b, request_origin: 'https://evil.test' }),
      undefined,
      401,
      'refresh_request_origin_azp_mismatch',
    ],
    [
      'request_origin that is not an origin',
      (b: object) => ({ ...b, request_origin: 'localhost' }),
      undefined,
      401,
      'refresh_request_origin_invalid',
    ],
  ])('refuses %s with the catalogue code', async (_, change, secret, status, code) => {
    const { clerk, session, body } = setup()
    const response = await refresh(clerk, session.sessionId, change(body as never) as Record<string, unknown>, secret)
    expect(response.status).toBe(status)
    const errors = await response.clone().json()
    expect(errors.errors[0].code).toBe(code)
    expect(typeof errors.clerk_trace_id).toBe('string')
    expect(clerk.stats().rejected).toBe(1)
    if (status === 401 && code !== 'clerk_key_invalid') expect(REFRESH_ERROR_CODES).toContain(code)
  })

  it('refuses another session, an ended session, a deleted user and an unknown session', async () => {
    const { clerk, session, body } = setup()
    const other = clerk.createSession({ origin: ORIGIN })
    expect(await codeOf(await refresh(clerk, other.sessionId, { ...body, refresh_token: other.refreshToken }))).toBe('refresh_sid_mismatch')
    expect(await codeOf(await refresh(clerk, 'sess_unknown', body))).toBe('session_refresh_session_not_found')
    clerk.deleteUser('user_e')
    expect(await codeOf(await refresh(clerk, session.sessionId, body))).toBe('session_refresh_user_not_found')
    const { clerk: clerk2, session: s2, body: b2 } = setup()
    clerk2.revokeSession(s2.sessionId)
    const ended = await refresh(clerk2, s2.sessionId, b2)
    expect(ended.status).toBe(401)
    expect(await codeOf(ended)).toBe('session_refresh_inactive_session')
  })

  it('refreshes each expired token once: the second use is "consumed"', async () => {
    const { clerk, session, body } = setup()
    expect((await refresh(clerk, session.sessionId, body)).status).toBe(200)
    const again = await refresh(clerk, session.sessionId, body)
    expect(again.status).toBe(401)
    expect(await codeOf(again)).toBe('session_refresh_expired_session_token_consumed')
    expect(clerk.stats().byCode).toEqual({ session_refresh_expired_session_token_consumed: 1 })
  })

  it('refuses tokens that expired longer ago than expiredTokenMaxAgeSeconds', async () => {
    const { clerk, session, body, clock } = setup({ expiredTokenMaxAgeSeconds: 120 })
    clock.now += 120_000
    expect(await codeOf(await refresh(clerk, session.sessionId, body))).toBe('session_refresh_expired_session_token_too_old')
  })

  it('refuses a token issued in its future', async () => {
    const { clerk, session, body, clock } = setup()
    clock.now -= 200_000
    expect(await codeOf(await refresh(clerk, session.sessionId, body))).toBe('expired_session_token_invalid')
  })

  it('refuses unexpired tokens by default ("ineligible"), and refreshes them with unexpiredTokens: "accept"', async () => {
    for (const policy of ['refuse', 'accept'] as const) {
      const clock = { now: Date.now() }
      const clerk = createClerkEmulator({ now: () => clock.now, unexpiredTokens: policy })
      const s = clerk.createSession({ origin: ORIGIN })
      const fresh = await refresh(clerk, s.sessionId, {
        expired_token: s.sessionToken,
        refresh_token: s.refreshToken,
        request_origin: ORIGIN,
      })
      if (policy === 'refuse') {
        expect(fresh.status).toBe(401)
        expect(await codeOf(fresh)).toBe('session_refresh_session_token_ineligible')
        clock.now += 61_000
        const later = await refresh(clerk, s.sessionId, {
          expired_token: s.sessionToken,
          refresh_token: s.refreshToken,
          request_origin: ORIGIN,
        })
        expect(later.status).toBe(200)
      } else {
        expect(fresh.status).toBe(200)
      }
    }
  })

  it('records what each request carried', async () => {
    const { clerk, session, body } = setup()
    await clerk.handler(
      new Request(`http://clerk.test/v1/sessions/${session.sessionId}/refresh?suffixed_cookies=true`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${clerk.secretKey}`,
          'content-type': 'application/json',
          'clerk-api-version': '2026-05-12',
          'user-agent': 'probe/1',
        },
        body: JSON.stringify(body),
      }),
    )
    expect(clerk.requests()).toEqual([
      {
        method: 'POST',
        path: `/v1/sessions/${session.sessionId}/refresh`,
        query: { suffixed_cookies: 'true' },
        apiVersion: '2026-05-12',
        userAgent: 'probe/1',
        body,
        status: 200,
        code: null,
      },
    ])
  })

  it('injects faults and counts refreshes per session', async () => {
    const { clerk, session, body, clock } = setup()
    clerk.setFaults({ failNext: 2, failStatus: 429, retryAfterSeconds: 3 })
    const first = await refresh(clerk, session.sessionId, body)
    expect(first.status).toBe(429)
    expect(first.headers.get('retry-after')).toBe('3')
    expect(await codeOf(first)).toBe('too_many_requests')
    expect((await refresh(clerk, session.sessionId, body)).status).toBe(429)
    const ok = await refresh(clerk, session.sessionId, body)
    expect(ok.status).toBe(200)
    clock.now += 61_000
    const next = { ...body, expired_token: (await ok.json()).jwt }
    clerk.setFaults({ dropNext: 1, dropAfterRefreshNext: 1 })
    expect((await refresh(clerk, session.sessionId, next)).type).toBe('error')
    // the answer is lost, but the refresh happened: the token is now consumed
    expect((await refresh(clerk, session.sessionId, next)).type).toBe('error')
    expect(await codeOf(await refresh(clerk, session.sessionId, next))).toBe('session_refresh_expired_session_token_consumed')
    clerk.setFaults({ latencyMs: 100 })
    const started = performance.now()
    await refresh(clerk, session.sessionId, body)
    expect(performance.now() - started).toBeGreaterThanOrEqual(95)
    clerk.clearFaults()
    expect(clerk.stats()).toMatchObject({ refreshes: 2, faulted: 4, bySession: { [session.sessionId]: 2 } })
  })
})
