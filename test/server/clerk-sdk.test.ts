// @vitest-environment node
/**
 * Clerk's own backend SDK (`@clerk/backend`, pinned) is the reference client: what it gets from
 * the emulator is what it gets from Clerk, and what the proxy sends is what it sends.
 */
import { createClerkClient } from '@clerk/backend'
import { createServer } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { createRefreshHandler, toNodeHandler } from '../../src/server/index.js'
import { createClerkEmulator, publishableKeyFor, type EmulatedSession } from '../../src/testing/index.js'
import { close, listen } from '../helpers/servers.js'

const ORIGIN = 'https://app.example.test'
const CHROME_UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36'
const servers: ReturnType<typeof createServer>[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map(close))
})

/** The emulator on 127.0.0.1 (the SDK takes no injected fetch), its clock movable by the test. */
async function emulator(options: Parameters<typeof createClerkEmulator>[0] = {}) {
  const clock = { offsetMs: 0 }
  const clerk = createClerkEmulator({
    publishableKey: publishableKeyFor('clerk.example.test', 'live'),
    secretKey: 'sk_live_emulator',
    now: () => Date.now() + clock.offsetMs,
    ...options,
  })
  const server = createServer(toNodeHandler(clerk.handler, { maxBodyBytes: 1 << 20 }))
  servers.push(server)
  const apiUrl = await listen(server)
  const sdk = createClerkClient({ secretKey: clerk.secretKey, publishableKey: clerk.publishableKey, apiUrl, telemetry: { disabled: true } })
  /** A session whose first token expired `ageMs - lifetime` ago. */
  const aged = (ageMs = 62_000): EmulatedSession => {
    clock.offsetMs = -ageMs
    const session = clerk.createSession({ userId: 'user_sdk', origin: ORIGIN })
    clock.offsetMs = 0
    return session
  }
  return { clerk, apiUrl, sdk, aged }
}

const bodyOf = (s: EmulatedSession, extra: Record<string, unknown> = {}) => ({
  expired_token: s.sessionToken,
  refresh_token: s.refreshToken,
  request_origin: ORIGIN,
  ...extra,
})

async function sdkError(promise: Promise<unknown>): Promise<{ status: number; code: string }> {
  try {
    await promise
  } catch (error) {
    const e = error as { name: string; status: number; errors: { code: string }[] }
    expect(e.name).toBe('ClerkAPIResponseError')
    return { status: e.status, code: e.errors[0]!.code }
  }
  throw new Error('expected a ClerkAPIResponseError')
}

describe("Clerk's SDK against the emulator", () => {
  it('refreshSession gets a Token in the token format and Cookies in the cookie format', async () => {
    const { sdk, aged, clerk } = await emulator()
    const s = aged()
    const token = await sdk.sessions.refreshSession(s.sessionId, bodyOf(s, { format: 'token' }))
    expect(token.jwt).toMatch(/^ey/)
    const s2 = aged()
    const cookies = await sdk.sessions.refreshSession(s2.sessionId, { ...bodyOf(s2, { format: 'cookie' }), suffixed_cookies: true })
    expect((cookies as unknown as { cookies: string[] }).cookies).toEqual([
      expect.stringMatching(/^__session=ey[^;]+; Path=\/; Secure; SameSite=Lax$/),
      expect.stringMatching(new RegExp(`^__session_${clerk.cookieSuffix}=ey`)),
    ])
    const [, second] = clerk.requests()
    expect(second).toMatchObject({ apiVersion: '2026-05-12', userAgent: '@clerk/backend@3.25.0', query: { suffixed_cookies: 'true' } })
  })

  it.each([
    ['an unknown session', 'session_refresh_session_not_found'],
    ['an ended session', 'session_refresh_inactive_session'],
    ['a deleted user', 'session_refresh_user_not_found'],
    ['an unknown refresh token', 'refresh_token_not_found'],
    ['a consumed token', 'session_refresh_expired_session_token_consumed'],
    ['a token expired too long ago', 'session_refresh_expired_session_token_too_old'],
    ['an unexpired token', 'session_refresh_session_token_ineligible'],
    ['a forged token', 'expired_session_token_invalid'],
    ["another session's token", 'refresh_sid_mismatch'],
    ['a request_origin other than azp', 'refresh_request_origin_azp_mismatch'],
    ['a request_origin that is no origin', 'refresh_request_origin_invalid'],
  ])('gets a ClerkAPIResponseError 401 for %s: %s', async (what, code) => {
    const { sdk, aged, clerk } = await emulator({ expiredTokenMaxAgeSeconds: 600 })
    const s = what === 'a token expired too long ago' ? aged(700_000) : what === 'an unexpired token' ? aged(0) : aged()
    let sid = s.sessionId
    let body = bodyOf(s)
    if (what === 'an unknown session') sid = 'sess_unknown'
    if (what === 'an ended session') clerk.revokeSession(sid)
    if (what === 'a deleted user') clerk.deleteUser('user_sdk')
    if (what === 'an unknown refresh token') body = { ...body, refresh_token: 'rt_unknown' }
    if (what === 'a consumed token') await sdk.sessions.refreshSession(sid, body)
    if (what === 'a forged token') body = { ...body, expired_token: `${s.sessionToken.slice(0, -6)}AAAAAA` }
    if (what === "another session's token") sid = aged().sessionId
    if (what === 'a request_origin other than azp') body = { ...body, request_origin: 'https://evil.example.test' }
    if (what === 'a request_origin that is no origin') body = { ...body, request_origin: 'app.example.test' }
    expect(await sdkError(sdk.sessions.refreshSession(sid, body))).toEqual({ status: 401, code })
  })

  it('gets clerk_key_invalid for a wrong secret key, and 422 form errors for a bad body', async () => {
    const { apiUrl, aged, clerk } = await emulator()
    const s = aged()
    const wrong = createClerkClient({ secretKey: 'sk_live_wrong', apiUrl, telemetry: { disabled: true } })
    expect(await sdkError(wrong.sessions.refreshSession(s.sessionId, bodyOf(s)))).toEqual({ status: 401, code: 'clerk_key_invalid' })
    const sdk = createClerkClient({ secretKey: clerk.secretKey, apiUrl, telemetry: { disabled: true } })
    const bad = sdk.sessions.refreshSession(s.sessionId, { ...bodyOf(s), format: 'xml' as 'token' })
    expect(await sdkError(bad)).toEqual({ status: 422, code: 'form_param_value_invalid' })
  })

  it('authenticateRequest refreshes an expired __session through the emulator with __refresh_<suffix>', async () => {
    const { sdk, aged, clerk } = await emulator()
    const s = aged(70_000) // past the SDK's 5 s clock-skew allowance
    const cookie = s.cookies.map((c) => c.split(';')[0]).join('; ')
    const request = new Request(`${ORIGIN}/dashboard`, { headers: { cookie, 'user-agent': CHROME_UA, 'sec-fetch-dest': 'document' } })
    const state = await sdk.authenticateRequest(request, { publishableKey: clerk.publishableKey })
    expect(state.status).toBe('signed-in')
    expect(state.toAuth()).toMatchObject({ sessionId: s.sessionId, userId: 'user_sdk' })
    expect(state.headers.getSetCookie().some((c) => c.startsWith('__session'))).toBe(true)
    const refresh = clerk.requests().find((r) => r.path.endsWith('/refresh'))
    expect(refresh).toMatchObject({
      status: 200,
      body: { format: 'cookie', expired_token: s.sessionToken, refresh_token: s.refreshToken, request_origin: ORIGIN },
    })
  })

  it("the proxy's upstream request matches the SDK's for the same browser request, field by field", async () => {
    const { sdk, aged, clerk, apiUrl } = await emulator()
    const headers = {
      'user-agent': CHROME_UA,
      'accept-language': 'en-US,en;q=0.9',
      'sec-ch-ua': '"Chromium";v="142", "Not_A Brand";v="99"',
      'sec-ch-ua-platform': '"Linux"',
      'x-amzn-oidc-data': 'eyJsb2FkLWJhbGFuY2VyIjoiand0In0',
      'x-api-key': 'secret-api-key',
    }
    // The SDK's own refresh (a GET page load) …
    const a = aged(70_000)
    const cookieA = a.cookies.map((c) => c.split(';')[0]).join('; ')
    await sdk.authenticateRequest(new Request(`${ORIGIN}/page`, { headers: { ...headers, cookie: cookieA } }), {
      publishableKey: clerk.publishableKey,
    })
    // … and the proxy's, for the same browser (a POST from the agent).
    const b = aged()
    const handler = createRefreshHandler({ secretKey: clerk.secretKey, publishableKey: clerk.publishableKey, apiUrl, format: 'cookie' })
    const cookieB = b.cookies.map((c) => c.split(';')[0]).join('; ')
    const response = await handler(
      new Request(`${ORIGIN}/api/session/refresh`, {
        method: 'POST',
        headers: { ...headers, cookie: cookieB, origin: ORIGIN, 'content-type': 'application/json' },
        body: JSON.stringify({ session_id: b.sessionId, expired_token: b.sessionToken }),
      }),
    )
    expect(response.status).toBe(200)
    const [theirs, ours] = clerk.requests().filter((r) => r.path.endsWith('/refresh'))
    expect(ours!.apiVersion).toBe(theirs!.apiVersion)
    expect(ours!.query).toEqual(theirs!.query)
    const t = theirs!.body as Record<string, Record<string, string[]>>
    const o = ours!.body as Record<string, Record<string, string[]>>
    expect(Object.keys(o).sort()).toEqual(Object.keys(t).sort())
    expect(o.format).toBe(t.format)
    expect(o.request_origin).toBe(t.request_origin)
    for (const name of ['user-agent', 'accept-language', 'sec-ch-ua', 'sec-ch-ua-platform'])
      expect(o.request_headers![name]).toEqual(t.request_headers![name])
    // What describes the browser is sent as Clerk's SDK sends it; credentials are not.
    for (const name of ['cookie', 'x-amzn-oidc-data', 'x-api-key']) {
      expect(t.request_headers![name]).toBeDefined()
      expect(o.request_headers![name]).toBeUndefined()
    }
  })
})
