// @vitest-environment node
import { afterEach, describe, expect, it } from 'vitest'
import { cookieSuffix, createRefreshHandler } from '../../src/server/index.js'
import { REFRESH_ERROR_CODES } from '../../src/testing/index.js'
import { clerkErrors } from '../../src/testing/catalogue.js'
import { sessionJwt } from '../helpers/jwt.js'
import { startStack, type Stack } from '../helpers/servers.js'

let stack: Stack | undefined
afterEach(async () => {
  await stack?.close()
  stack = undefined
})

/** Every refusal of Clerk's catalogue → the proxy's wire answer (the README's wire protocol). */
const WIRE: Record<string, [number, string]> = {
  session_refresh_session_not_found: [401, 'session_ended'],
  session_refresh_inactive_session: [401, 'session_ended'],
  session_refresh_user_not_found: [401, 'session_ended'],
  refresh_token_not_found: [409, 'recovery_required'],
  session_refresh_expired_session_token_consumed: [409, 'recovery_required'],
  session_refresh_expired_session_token_too_old: [409, 'recovery_required'],
  session_refresh_session_token_ineligible: [409, 'recovery_required'], // for an expired token
  session_refresh_cannot_determine_session_token_age: [409, 'recovery_required'],
  session_refresh_expired_session_token_missing_iat: [409, 'recovery_required'],
  expired_session_token_invalid: [409, 'recovery_required'],
  expired_session_token_missing_azp: [409, 'recovery_required'],
  expired_session_token_missing_sid: [409, 'recovery_required'],
  refresh_sid_mismatch: [409, 'recovery_required'],
  refresh_request_origin_invalid: [409, 'recovery_required'],
  refresh_request_origin_azp_mismatch: [409, 'recovery_required'],
}

const PK = 'pk_test_Y2xlcmsuZXhhbXBsZS50ZXN0JA'
const SUFFIX = await cookieSuffix(PK)

function proxyAnswering(status: number, code: string, extra: Record<string, string> = {}) {
  let calls = 0
  const handler = createRefreshHandler({
    secretKey: 'sk_test_x',
    publishableKey: PK,
    verifyTokens: false,
    fetch: async () => {
      calls++
      return clerkErrors(status, code, 'from the test', extra)
    },
  })
  const call = (token = sessionJwt(Date.now() - 120_000)) =>
    handler(
      new Request('http://localhost/api/session/refresh', {
        method: 'POST',
        headers: { origin: 'http://localhost', 'content-type': 'application/json', cookie: `__refresh_${SUFFIX}=rt` },
        body: JSON.stringify({ session_id: 'sess_1', expired_token: token }),
      }),
    )
  return { call, calls: () => calls }
}

describe("Clerk's error codes through the proxy", () => {
  it('covers the whole catalogue', () => {
    expect(Object.keys(WIRE).sort()).toEqual([...REFRESH_ERROR_CODES].sort())
  })

  it.each(Object.entries(WIRE))('%s → %j', async (code, [status, wire]) => {
    const { call } = proxyAnswering(401, code)
    const response = await call()
    expect(response.status).toBe(status)
    expect((await response.json()).error).toMatchObject({
      code: wire,
      reason: code === 'session_refresh_expired_session_token_consumed' ? 'token_consumed' : code,
    })
  })

  it.each([
    [401, 'clerk_key_invalid', 502, 'upstream_auth_failed'],
    [401, 'authorization_header_format_invalid', 502, 'upstream_auth_failed'],
    [422, 'form_param_unknown', 502, 'upstream_bad_response'],
    [400, 'request_body_invalid', 502, 'upstream_bad_response'],
    [429, 'too_many_requests', 429, 'rate_limited'],
    [500, 'internal_clerk_error', 503, 'upstream_unavailable'],
    [401, 'a_code_nobody_knows', 409, 'recovery_required'],
    [302, 'redirect', 502, 'upstream_bad_response'],
  ])('%i %s → %i %s', async (status, code, wireStatus, wire) => {
    const { call } = proxyAnswering(status, code, status === 429 ? { 'Retry-After': '9' } : {})
    const response = await call()
    expect(response.status).toBe(wireStatus)
    expect((await response.json()).error.code).toBe(wire)
    if (status === 429) expect(response.headers.get('retry-after')).toBe('9')
  })

  it('ineligible for a still-valid token → 503 not_yet_expired with Retry-After until its expiry', async () => {
    const { call } = proxyAnswering(401, 'session_refresh_session_token_ineligible')
    const token = sessionJwt(Date.now() - 20_000) // expires 39–40 s from now (`exp` is whole seconds)
    const expiresAt = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).exp * 1000
    const before = Date.now()
    const response = await call(token)
    const after = Date.now()
    expect(response.status).toBe(503)
    expect((await response.json()).error.code).toBe('not_yet_expired')
    // The whole seconds left until expiry, as the proxy saw them between the call and its answer.
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(Math.ceil((expiresAt - after) / 1000))
    expect(Number(response.headers.get('retry-after'))).toBeLessThanOrEqual(Math.ceil((expiresAt - before) / 1000))
  })
})

describe('idempotent refresh', () => {
  it('a retry after the browser lost the answer gets the same token, with one call to Clerk', async () => {
    stack = await startStack()
    stack.clerk.setFaults({ latencyMs: 300 })
    const lost = new AbortController()
    const first = stack.request({ signal: lost.signal })
    setTimeout(() => lost.abort(), 100)
    await expect(first).rejects.toThrow()
    // The proxy's call to Clerk completes anyway (JWKS and refresh, each 300 ms late).
    for (let i = 0; i < 50 && stack.events.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50))
    expect(stack.events[0]).toMatchObject({ status: 200, code: 'refreshed' })
    const retry = await stack.request()
    expect(retry.status).toBe(200)
    const { jwt } = await retry.json()
    const again = await (await stack.request()).json()
    expect(again.jwt).toBe(jwt)
    expect(stack.upstreamCalls).toBe(1)
    expect(stack.clerk.stats().refreshes).toBe(1)
    expect(stack.events.filter((e) => e.replayed)).toHaveLength(2)
  })

  it('replays only to the same refresh cookie', async () => {
    stack = await startStack()
    expect((await stack.request()).status).toBe(200)
    const other = await stack.request({ headers: { cookie: `__refresh_${stack.clerk.cookieSuffix}=guessed` } })
    expect(other.status).toBe(409)
    expect((await other.json()).error.reason).toBe('refresh_token_not_found')
  })

  it('a consumed token with nothing to replay (Clerk answered, the answer was lost before the proxy) is 409, never 401', async () => {
    stack = await startStack()
    stack.clerk.setFaults({ dropAfterRefreshNext: 1 })
    expect((await stack.request()).status).toBe(503)
    const retry = await stack.request()
    expect(retry.status).toBe(409)
    expect((await retry.json()).error).toMatchObject({ code: 'recovery_required', reason: 'token_consumed' })
  })
})

describe('early refresh', () => {
  it("'auto' learns from Clerk's first refusal and then answers unexpired tokens itself", async () => {
    stack = await startStack({}, { unexpiredTokens: 'refuse' })
    const fresh = () => stack!.sessionAged(10_000)
    const a = fresh()
    const call = (s: typeof a) =>
      stack!.request({
        headers: { cookie: `__refresh_${stack!.clerk.cookieSuffix}=${s.refreshToken}` },
        body: { session_id: s.sessionId, expired_token: s.sessionToken },
      })
    const before = stack.upstreamCalls
    const refused = await call(a)
    expect(refused.status).toBe(503)
    expect((await refused.json()).error.code).toBe('not_yet_expired')
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(49) // 50 s left, less iat's truncation
    expect(stack.upstreamCalls).toBe(before + 1)
    for (let i = 0; i < 5; i++) expect((await call(fresh())).status).toBe(503)
    expect(stack.upstreamCalls).toBe(before + 1) // learned: Clerk's quota is not spent on them
    expect((await stack.request()).status).toBe(200) // expired tokens still refresh
  })

  it.each([
    ['always', 'refuse', 503, 3],
    ['never', 'accept', 503, 0],
    ['auto', 'accept', 200, 3],
  ] as const)("earlyRefresh '%s' with Clerk that does '%s': %i, %i calls for 3 unexpired tokens", async (earlyRefresh, unexpiredTokens, status, calls) => {
    stack = await startStack({ earlyRefresh }, { unexpiredTokens })
    for (let i = 0; i < 3; i++) {
      const s = stack.sessionAged(10_000)
      const response = await stack.request({
        headers: { cookie: `__refresh_${stack.clerk.cookieSuffix}=${s.refreshToken}` },
        body: { session_id: s.sessionId, expired_token: s.sessionToken },
      })
      expect(response.status).toBe(status)
    }
    expect(stack.upstreamCalls).toBe(calls)
  })
})
