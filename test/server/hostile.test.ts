// @vitest-environment node
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeJwt } from '../helpers/jwt.js'
import { startStack, type Stack } from '../helpers/servers.js'

let stack: Stack
beforeAll(async () => {
  stack = await startStack()
})
afterAll(async () => {
  await stack.close()
})

type Case = [name: string, build: (s: Stack) => RequestInit & { url?: string }, status: number, code: string]

const json = (s: Stack, body: unknown, headers: Record<string, string> = {}) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', origin: s.origin, cookie: s.refreshCookie, ...headers },
  body: typeof body === 'string' ? body : JSON.stringify(body),
})
const good = (s: Stack) => ({ session_id: s.session.sessionId, expired_token: s.session.sessionToken })
const forged = (s: Stack, claims: Record<string, unknown>) => ({ ...good(s), expired_token: makeJwt(claims) })

const cases: Case[] = [
  ['GET', (s) => ({ method: 'GET', headers: { origin: s.origin } }), 405, 'method_not_allowed'],
  ['PUT', (s) => ({ ...json(s, good(s)), method: 'PUT' }), 405, 'method_not_allowed'],
  ['DELETE', (s) => ({ method: 'DELETE', headers: { origin: s.origin } }), 405, 'method_not_allowed'],
  ['OPTIONS preflight', (_s) => ({ method: 'OPTIONS', headers: { origin: 'https://evil.test' } }), 405, 'method_not_allowed'],
  [
    'no Origin',
    (s) => ({ ...json(s, good(s)), headers: { 'content-type': 'application/json', cookie: s.refreshCookie } }),
    403,
    'origin_not_allowed',
  ],
  ['a foreign Origin', (s) => json(s, good(s), { origin: 'https://evil.test' }), 403, 'origin_not_allowed'],
  ['Origin "null" (sandboxed iframe)', (s) => json(s, good(s), { origin: 'null' }), 403, 'origin_not_allowed'],
  ['a look-alike Origin', (s) => json(s, good(s), { origin: `${s.origin}.evil.test` }), 403, 'origin_not_allowed'],
  ['Sec-Fetch-Site cross-site', (s) => json(s, good(s), { 'sec-fetch-site': 'cross-site' }), 403, 'origin_not_allowed'],
  [
    'X-Forwarded-Host spoofing without trustProxy',
    (s) => json(s, good(s), { origin: 'https://evil.test', 'x-forwarded-host': 'evil.test', 'x-forwarded-proto': 'https' }),
    403,
    'origin_not_allowed',
  ],
  ['text/plain (a form post)', (s) => json(s, good(s), { 'content-type': 'text/plain' }), 415, 'unsupported_media_type'],
  [
    'form-urlencoded',
    (s) => json(s, 'session_id=x', { 'content-type': 'application/x-www-form-urlencoded' }),
    415,
    'unsupported_media_type',
  ],
  ['multipart', (s) => json(s, good(s), { 'content-type': 'multipart/form-data; boundary=x' }), 415, 'unsupported_media_type'],
  ['no content type', (s) => ({ method: 'POST', headers: { origin: s.origin }, body: '{}' }), 415, 'unsupported_media_type'],
  ['a 9 KiB body', (s) => json(s, { ...good(s), pad: 'x'.repeat(9 * 1024) }), 413, 'body_too_large'],
  ['a 1 MiB body', (s) => json(s, 'x'.repeat(1 << 20)), 413, 'body_too_large'],
  ['a truncated body', (s) => json(s, JSON.stringify(good(s)).slice(0, 30)), 400, 'invalid_json'],
  ['an empty body', (s) => json(s, ''), 400, 'invalid_json'],
  ['not JSON', (s) => json(s, 'hello'), 400, 'invalid_json'],
  ['a JSON array', (s) => json(s, [good(s)]), 400, 'invalid_request'],
  ['a JSON string', (s) => json(s, '"sess_1"'), 400, 'invalid_request'],
  ['JSON null', (s) => json(s, 'null'), 400, 'invalid_request'],
  ['an unknown field (refresh_token smuggling)', (s) => json(s, { ...good(s), refresh_token: 'attacker' }), 400, 'invalid_request'],
  ['request_origin smuggling', (s) => json(s, { ...good(s), request_origin: 'https://evil.test' }), 400, 'invalid_request'],
  ['no session_id', (s) => json(s, { expired_token: s.session.sessionToken }), 400, 'invalid_request'],
  ['a numeric session_id', (s) => json(s, { ...good(s), session_id: 42 }), 400, 'invalid_request'],
  ['a path-traversal session_id', (s) => json(s, { ...good(s), session_id: '../../v1/users' }), 400, 'invalid_request'],
  ['a session_id with CRLF (header injection)', (s) => json(s, { ...good(s), session_id: 'sess_1\r\nX-Evil: 1' }), 400, 'invalid_request'],
  ['no expired_token and no cookie', (s) => json(s, { session_id: s.session.sessionId }), 400, 'invalid_request'],
  ['a numeric expired_token', (s) => json(s, { ...good(s), expired_token: 7 }), 400, 'invalid_request'],
  ['an expired_token that is not a JWT', (s) => json(s, { ...good(s), expired_token: 'not-a-jwt' }), 400, 'token_malformed'],
  ['a JWT without exp', (s) => json(s, forged(s, { sid: s.session.sessionId, iat: 1 })), 400, 'token_malformed'],
  [
    'a JWT with a string sid of another session (forged sid)',
    (s) => json(s, forged(s, { sid: 'sess_other', iat: 1, exp: 2 })),
    400,
    'session_mismatch',
  ],
  ['a real token under another session_id', (s) => json(s, { ...good(s), session_id: 'sess_other' }), 400, 'session_mismatch'],
  ['no refresh cookie', (s) => json(s, good(s), { cookie: '' }), 409, 'recovery_required'],
  [
    "only the unsuffixed __refresh (never read) and another app's cookie",
    (s) => json(s, good(s), { cookie: '__refresh=abc; __refresh_zzzzzzzz=abc' }),
    409,
    'recovery_required',
  ],
]

describe('hostile and malformed requests to the proxy', () => {
  it(`has at least 30 cases (${cases.length})`, () => {
    expect(cases.length).toBeGreaterThanOrEqual(30)
  })

  it.each(cases)('%s → %i %s, and never reaches Clerk', async (_, build, status, code) => {
    const before = stack.upstreamCalls
    const init = build(stack)
    const response = await fetch(init.url ?? stack.url, init)
    expect(response.status).toBe(status)
    expect(response.headers.get('cache-control')).toBe('no-store')
    const text = await response.text()
    if (status !== 413 || text) expect(JSON.parse(text).error.code).toBe(code)
    for (const secret of [stack.clerk.secretKey, stack.session.refreshToken, stack.session.sessionToken]) expect(text).not.toContain(secret)
    expect(stack.upstreamCalls).toBe(before)
  })

  it('left the emulator untouched and logged nothing secret', () => {
    expect(stack.upstreamCalls).toBe(0)
    expect(stack.clerk.stats()).toMatchObject({ refreshes: 0, rejected: 0, faulted: 0 })
    const log = JSON.stringify(stack.events)
    for (const secret of [stack.clerk.secretKey, stack.session.refreshToken, stack.session.sessionToken]) expect(log).not.toContain(secret)
  })
})
