// @vitest-environment node
import { afterEach, describe, expect, it } from 'vitest'
import { createRefreshHandler } from '../../src/server/index.js'
import { decodeSessionToken } from '../../src/index.js'
import { startStack, type Stack } from '../helpers/servers.js'

let stack: Stack
afterEach(async () => {
  await stack?.close()
})

const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString())
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('the refresh proxy against the emulator over HTTP', () => {
  it('turns the browser request into RefreshSessionRequestBody and answers { jwt }', async () => {
    stack = await startStack()
    await sleep(1100) // so the new token's iat differs from the first one's
    const response = await stack.request({ headers: { 'user-agent': 'test-agent', authorization: 'Bearer app-token' } })
    expect(response.status).toBe(200)
    expect(response.headers.get('cache-control')).toBe('no-store')
    const { jwt } = await response.json()
    expect(decodeSessionToken(jwt)).toMatchObject({ sessionId: stack.session.sessionId, userId: 'user_test', lifetimeMs: 60_000 })
    expect(claims(jwt).iat).toBeGreaterThan(claims(stack.session.sessionToken).iat)
    const sent = stack.upstreamBodies[0] as Record<string, any>
    expect(Object.keys(sent).sort()).toEqual(['expired_token', 'format', 'refresh_token', 'request_headers', 'request_origin', 'request_originating_ip'])
    expect(sent).toMatchObject({ expired_token: stack.session.sessionToken, refresh_token: stack.session.refreshToken, request_origin: stack.origin, format: 'token', request_originating_ip: '127.0.0.1' })
    expect(sent.request_headers['user-agent']).toEqual(['test-agent'])
    expect(sent.request_headers.cookie).toBeUndefined()
    expect(sent.request_headers.authorization).toBeUndefined()
    expect(stack.clerk.stats()).toMatchObject({ refreshes: 1, bySession: { [stack.session.sessionId]: 1 } })
  })

  it('sets the session cookie as Clerk does', async () => {
    stack = await startStack()
    const response = await stack.request()
    const cookie = response.headers.getSetCookie()[0]
    const { jwt } = await response.json()
    expect(cookie).toBe(`__session=${jwt}; Path=/; Max-Age=60; SameSite=Lax`)
  })

  it('reads expired_token from the __session cookie when the body has none', async () => {
    stack = await startStack()
    const response = await stack.request({
      body: { session_id: stack.session.sessionId },
      headers: { cookie: `${stack.refreshCookie}; __session=${stack.session.sessionToken}` },
    })
    expect(response.status).toBe(200)
  })

  it('with format "cookie", passes Clerk\'s Set-Cookie on and still answers { jwt }', async () => {
    stack = await startStack({ format: 'cookie' })
    const response = await stack.request()
    expect(response.status).toBe(200)
    const { jwt } = await response.json()
    const cookies = response.headers.getSetCookie()
    expect(cookies).toContain(`__session=${jwt}; Path=/; Secure; SameSite=Lax`)
    expect(cookies).toContain(`__session_${stack.clerk.cookieSuffix}=${jwt}; Path=/; Secure; SameSite=Lax`)
  })

  it('answers 401 session_invalid for a revoked session', async () => {
    stack = await startStack()
    stack.clerk.revokeSession(stack.session.sessionId)
    const response = await stack.request()
    expect(response.status).toBe(401)
    expect((await response.json()).error.code).toBe('session_invalid')
  })

  it.each([
    [{ failNext: 1, failStatus: 500 }, 503, 'upstream_unavailable'],
    [{ failNext: 1, failStatus: 502 }, 503, 'upstream_unavailable'],
    [{ dropNext: 1 }, 503, 'upstream_unavailable'],
    [{ failNext: 1, failStatus: 429, retryAfterSeconds: 7 }, 429, 'rate_limited'],
  ])('maps upstream fault %o to %i %s', async (faults, status, code) => {
    stack = await startStack()
    stack.clerk.setFaults(faults)
    const response = await stack.request()
    expect(response.status).toBe(status)
    expect((await response.json()).error.code).toBe(code)
    if (status === 429) expect(response.headers.get('retry-after')).toBe('7')
  })

  it('answers 504 when Clerk is slower than timeoutMs', async () => {
    stack = await startStack({ timeoutMs: 200 })
    stack.clerk.setFaults({ latencyMs: 1_000 })
    const response = await stack.request()
    expect(response.status).toBe(504)
    expect((await response.json()).error.code).toBe('upstream_timeout')
  })

  it('answers 502 when Clerk answers 200 without a token', async () => {
    stack = await startStack({ fetch: async () => Response.json({ object: 'token', jwt: 'garbage' }) })
    const response = await stack.request()
    expect(response.status).toBe(502)
    expect((await response.json()).error.code).toBe('upstream_bad_response')
  })

  it('answers 502 upstream_auth_failed, not 401, when the secret key is refused', async () => {
    stack = await startStack({ secretKey: 'sk_test_wrong' })
    const response = await stack.request()
    expect(response.status).toBe(502)
    expect((await response.json()).error.code).toBe('upstream_auth_failed')
  })

  it('copes with an upstream that refuses unexpired tokens: 503 with Retry-After until expiry', async () => {
    stack = await startStack({}, { rejectUnexpiredTokens: true, tokenLifetimeSeconds: 2 })
    const session = stack.clerk.createSession()
    const request = () =>
      fetch(stack.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: stack.origin, cookie: `__refresh_${stack.clerk.cookieSuffix}=${session.refreshToken}` },
        body: JSON.stringify({ session_id: session.sessionId, expired_token: session.sessionToken }),
      })
    const early = await request()
    expect(early.status).toBe(503)
    expect((await early.json()).error.code).toBe('token_not_expired')
    expect(Number(early.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    await sleep(2_100)
    expect((await request()).status).toBe(200)
  })

  it('uses X-Forwarded-For only with trustProxy', async () => {
    stack = await startStack()
    await stack.request({ headers: { 'x-forwarded-for': '203.0.113.9' } })
    expect(stack.upstreamBodies[0].request_originating_ip).toBe('127.0.0.1')
    await stack.close()
    stack = await startStack({ trustProxy: true })
    await stack.request({ headers: { 'x-forwarded-for': '203.0.113.9, 10.0.0.1' } })
    expect(stack.upstreamBodies[0].request_originating_ip).toBe('203.0.113.9')
  })

  it('accepts configured extra origins and refuses others', async () => {
    stack = await startStack({ allowedOrigins: ['https://app.example.com'] })
    expect((await stack.request({ headers: { origin: 'https://app.example.com' } })).status).toBe(200)
    expect((await stack.request({ headers: { origin: 'https://evil.example.com' } })).status).toBe(403)
  })

  it('shares one upstream call among 20 concurrent identical requests', async () => {
    stack = await startStack()
    stack.clerk.setFaults({ latencyMs: 150 })
    const responses = await Promise.all(Array.from({ length: 20 }, () => stack.request()))
    const tokens = await Promise.all(responses.map(async (r) => (await r.json()).jwt))
    expect(responses.every((r) => r.status === 200)).toBe(true)
    expect(new Set(tokens).size).toBe(1)
    expect(stack.clerk.stats().refreshes).toBe(1)
    expect(stack.upstreamCalls).toBe(1)
    expect(stack.events.filter((e) => e.coalesced)).toHaveLength(19)
  })

  it('lets a non-Clerk backend plug in through `upstream`', async () => {
    stack = await startStack()
    const seen: string[] = []
    const handler = createRefreshHandler({
      upstream: async (sessionId, body) => {
        seen.push(`${sessionId}:${body.refresh_token}`)
        return { jwt: stack.session.sessionToken }
      },
    })
    const response = await handler(
      new Request('https://app.test/api/session/refresh', {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: 'https://app.test', cookie: '__refresh=rt_1' },
        body: JSON.stringify({ session_id: stack.session.sessionId, expired_token: stack.session.sessionToken }),
      }),
    )
    expect(response.status).toBe(200)
    expect(seen).toEqual([`${stack.session.sessionId}:rt_1`])
  })

  it('survives a client that disconnects mid-body, and keeps serving', async () => {
    stack = await startStack()
    const { request: httpRequest } = await import('node:http')
    await new Promise<void>((resolve) => {
      const req = httpRequest(stack.url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': '500', origin: stack.origin } })
      req.on('error', () => resolve())
      req.write('{"session_id":')
      setTimeout(() => {
        req.destroy()
        resolve()
      }, 50)
    })
    expect((await stack.request()).status).toBe(200)
    expect(stack.upstreamCalls).toBe(1)
  })

  it('never puts a secret, refresh token or session token in an event or error answer', async () => {
    stack = await startStack()
    const outputs: string[] = []
    for (const faults of [{ failNext: 1 }, { dropNext: 1 }, {}]) {
      stack.clerk.setFaults(faults)
      const response = await stack.request({ body: { session_id: stack.session.sessionId, expired_token: stack.session.sessionToken } })
      if (response.status !== 200) outputs.push(await response.text(), JSON.stringify([...response.headers]))
    }
    stack.clerk.revokeSession(stack.session.sessionId)
    const revoked = await stack.request()
    outputs.push(await revoked.text(), JSON.stringify([...revoked.headers]), JSON.stringify(stack.events))
    const text = outputs.join('\n')
    for (const secret of [stack.clerk.secretKey, stack.session.refreshToken, stack.session.sessionToken, stack.session.sessionToken.split('.')[2]]) {
      expect(text).not.toContain(secret)
    }
    expect(stack.events.length).toBeGreaterThanOrEqual(4)
  })
})
