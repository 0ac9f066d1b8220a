// @vitest-environment node
import { afterEach, describe, expect, it } from 'vitest'
import { createRefreshHandler, toNodeHandler } from '../../src/server/index.js'
import { decodeSessionToken } from '../../src/index.js'
import { close, listen, startStack, type Stack } from '../helpers/servers.js'
import { readFileSync } from 'node:fs'
import { VERSION } from '../../src/version.js'

let stack: Stack
afterEach(async () => {
  await stack?.close()
})

const claims = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString())

describe('the refresh proxy against the emulator over HTTP', () => {
  it('turns the browser request into RefreshSessionRequestBody and answers { jwt }', async () => {
    stack = await startStack()
    const response = await stack.request({ headers: { 'user-agent': 'test-agent', authorization: 'Bearer app-token' } })
    expect(response.status).toBe(200)
    expect(response.headers.get('cache-control')).toBe('no-store')
    const { jwt } = await response.json()
    expect(decodeSessionToken(jwt)).toMatchObject({ sessionId: stack.session.sessionId, userId: 'user_test', lifetimeMs: 60_000 })
    expect(claims(jwt).iat).toBeGreaterThan(claims(stack.session.sessionToken).iat)
    const sent = stack.upstreamBodies[0] as Record<string, any>
    expect(Object.keys(sent).sort()).toEqual(['expired_token', 'format', 'refresh_token', 'request_headers', 'request_origin'])
    expect(sent).toMatchObject({
      expired_token: stack.session.sessionToken,
      refresh_token: stack.session.refreshToken,
      request_origin: stack.origin,
      format: 'token',
    })
    expect(sent.request_headers['user-agent']).toEqual(['test-agent'])
    expect(sent.request_headers.cookie).toBeUndefined()
    expect(sent.request_headers.authorization).toBeUndefined()
    const [call] = stack.clerk.requests().filter((r) => r.method === 'POST')
    expect(call).toMatchObject({ apiVersion: '2026-05-12', userAgent: `session-keeper/${VERSION}`, query: { suffixed_cookies: 'true' } })
    expect(stack.clerk.stats()).toMatchObject({ refreshes: 1, bySession: { [stack.session.sessionId]: 1 } })
  })

  it('sends the version of package.json in its User-Agent', () => {
    expect(VERSION).toBe(JSON.parse(readFileSync('package.json', 'utf8')).version)
  })

  it('passes a real Chrome User-Agent and client hints to Clerk verbatim, one value each', async () => {
    stack = await startStack()
    const ua = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36'
    const hints = '"Chromium";v="142", "Google Chrome";v="142", "Not_A Brand";v="99"'
    await stack.request({ headers: { 'user-agent': ua, 'sec-ch-ua': hints, 'accept-language': 'en-US,en;q=0.9' } })
    const sent = stack.upstreamBodies[0] as { request_headers: Record<string, string[]> }
    expect(sent.request_headers['user-agent']).toEqual([ua])
    expect(sent.request_headers['sec-ch-ua']).toEqual([hints])
    expect(sent.request_headers['accept-language']).toEqual(['en-US,en;q=0.9'])
  })

  it("sets __session and __session_<suffix> as Clerk's browser SDK does: a year, not HttpOnly", async () => {
    stack = await startStack()
    const response = await stack.request()
    const { jwt } = await response.json()
    expect(response.headers.getSetCookie()).toEqual([
      `__session=${jwt}; Path=/; Max-Age=31536000; SameSite=Lax`,
      `__session_${stack.clerk.cookieSuffix}=${jwt}; Path=/; Max-Age=31536000; SameSite=Lax`,
    ])
  })

  it('a browser whose Clerk client signed out (__client_uat=0, as Clerk writes it): 401 session_ended, without asking Clerk, and nothing replayed', async () => {
    stack = await startStack()
    expect((await stack.request()).status).toBe(200) // refreshed; say its answer was lost
    const suffix = stack.clerk.cookieSuffix
    // Signed in: the retry of the same token is replayed, Clerk not asked again.
    const retry = await stack.request({ headers: { cookie: `${stack.refreshCookie}; __client_uat_${suffix}=1796000000` } })
    expect(retry.status).toBe(200)
    const calls = stack.upstreamBodies.length
    for (const cookie of [`__client_uat_${suffix}=0; __client_uat=0`, '__client_uat=0']) {
      const response = await stack.request({ headers: { cookie: `${stack.refreshCookie}; ${cookie}` } })
      expect(response.status, cookie).toBe(401)
      expect((await response.json()).error).toMatchObject({ code: 'session_ended' })
    }
    expect(stack.upstreamBodies.length).toBe(calls)
    // A client whose either cookie holds a time is active to Clerk's middleware (with the
    // suffixed one at 0 it reads the unsuffixed cookies): not signed out.
    for (const cookie of [`__client_uat=0; __client_uat_${suffix}=1796000000`, `__client_uat_${suffix}=0; __client_uat=1796000000`]) {
      const response = await stack.request({ headers: { cookie: `${stack.refreshCookie}; ${cookie}` } })
      expect(response.status, cookie).toBe(200)
    }
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

  it('answers 401 session_ended for an ended session', async () => {
    stack = await startStack()
    stack.clerk.revokeSession(stack.session.sessionId)
    const response = await stack.request()
    expect(response.status).toBe(401)
    expect((await response.json()).error).toMatchObject({ code: 'session_ended', reason: 'session_refresh_inactive_session' })
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
    stack = await startStack({
      fetch: async (input, init) =>
        (input instanceof Request ? input.url : String(input)).includes('/refresh')
          ? Response.json({ object: 'token', jwt: 'garbage' })
          : fetch(input, init),
    })
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

  it('sends request_originating_ip only behind a trusted proxy: the right-most untrusted X-Forwarded-For hop', async () => {
    stack = await startStack()
    await stack.request({ headers: { 'x-forwarded-for': '203.0.113.9' } })
    expect(stack.upstreamBodies[0]!.request_originating_ip).toBeUndefined()
    await stack.close()
    stack = await startStack({ trustProxy: true })
    await stack.request({ headers: { 'x-forwarded-for': '6.6.6.6, 203.0.113.9' } })
    expect(stack.upstreamBodies[0]!.request_originating_ip).toBe('203.0.113.9')
    await stack.close()
    stack = await startStack({ trustProxy: true, trustedHops: 2 })
    await stack.request({ headers: { 'x-forwarded-for': '6.6.6.6, 203.0.113.9, 10.0.0.1' } })
    expect(stack.upstreamBodies[0]!.request_originating_ip).toBe('203.0.113.9')
    await stack.request({ headers: { 'x-forwarded-for': 'not-an-ip, <script>' }, token: stack.sessionAged(62_000).sessionToken })
  })

  it('accepts configured extra origins and refuses others', async () => {
    stack = await startStack({ allowedOrigins: ['https://app.example.com'], verifyTokens: false })
    expect((await stack.request({ headers: { origin: 'https://evil.example.com' } })).status).toBe(403)
    // allowedOrigins is the whole truth: the request's own Host no longer vouches for it
    expect((await stack.request()).status).toBe(403)
    const other = await stack.request({ headers: { origin: 'https://app.example.com' } })
    expect(other.status).toBe(409) // allowed through, then Clerk: the token's azp is the app's own origin
    expect((await other.json()).error.reason).toBe('refresh_request_origin_azp_mismatch')
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

  it("coalesces only requests for the same token: a concurrent request with the newer token of the session is not given the older one's answer", async () => {
    stack = await startStack({}, { unexpiredTokens: 'accept' })
    // The session's first token, refreshed behind the proxy's back (another device, a test):
    // the old token is consumed at Clerk, the new one is current.
    const old = stack.session.sessionToken
    const direct = await fetch(`${stack.apiUrl}/v1/sessions/${stack.session.sessionId}/refresh`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.clerk.secretKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ expired_token: old, refresh_token: stack.session.refreshToken, request_origin: stack.origin }),
    })
    expect(direct.status).toBe(200)
    const current = (await direct.json()).jwt as string
    stack.clerk.setFaults({ latencyMs: 300 })
    const first = stack.request({ token: old })
    await new Promise((resolve) => setTimeout(resolve, 50)) // the old token's call is in flight
    const second = stack.request({ token: current })
    const [stale, fresh] = await Promise.all([first, second])
    expect(stale.status).toBe(409) // …_consumed: recovery, for the old token only
    expect(fresh.status).toBe(200)
    expect(decodeSessionToken((await fresh.json()).jwt).issuedAt).toBeGreaterThanOrEqual(decodeSessionToken(current).issuedAt)
    expect(stack.upstreamCalls).toBe(3) // the direct one, then one per token
  })

  it('lets a non-Clerk backend plug in through `upstream`', async () => {
    stack = await startStack()
    const seen: string[] = []
    const handler = createRefreshHandler({
      refreshCookieName: '__refresh',
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

  it('works behind express.json(), which has already read the body', async () => {
    stack = await startStack()
    const { default: express } = await import('express')
    const { createServer } = await import('node:http')
    const allowed = createRefreshHandler({
      secretKey: stack.clerk.secretKey,
      publishableKey: stack.clerk.publishableKey,
      apiUrl: stack.apiUrl,
      origin: stack.origin,
    })
    const app2 = express()
    app2.use(express.json())
    app2.post('/api/session/refresh', toNodeHandler(allowed))
    const server2 = createServer(app2)
    const url2 = await listen(server2)
    const ok = await fetch(`${url2}/api/session/refresh`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: stack.origin, cookie: stack.refreshCookie },
      body: JSON.stringify({ session_id: stack.session.sessionId, expired_token: stack.session.sessionToken }),
      signal: AbortSignal.timeout(5_000),
    })
    await close(server2)
    expect(ok.status).toBe(200)
    expect((await ok.json()).jwt).toMatch(/^ey/)
  })

  it('survives a client that disconnects mid-body, and keeps serving', async () => {
    stack = await startStack()
    const { request: httpRequest } = await import('node:http')
    await new Promise<void>((resolve) => {
      const req = httpRequest(stack.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': '500', origin: stack.origin },
      })
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
    for (const secret of [
      stack.clerk.secretKey,
      stack.session.refreshToken,
      stack.session.sessionToken,
      stack.session.sessionToken.split('.')[2],
    ]) {
      expect(text).not.toContain(secret)
    }
    expect(stack.events.length).toBeGreaterThanOrEqual(4)
  })
})
