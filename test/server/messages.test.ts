// @vitest-environment node
/**
 * Issue 16: every error answer names what the proxy saw and what it expected, and never a secret
 * key, a session token or a refresh cookie. Through the handler, with the emulator as Clerk.
 */
import { createServer } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { createRefreshHandler, toNodeHandler, type RefreshHandlerOptions } from '../../src/server/index.js'
import { createClerkEmulator, type ClerkEmulatorOptions } from '../../src/testing/index.js'
import { makeJwt } from '../helpers/jwt.js'
import { close, listen } from '../helpers/servers.js'

const ORIGIN = 'https://app.example.com'
const API = 'https://api.clerk.test'

const servers: ReturnType<typeof createServer>[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map(close))
})

/** The handler against an in-process emulator (no sockets); `send` checks that no answer leaks a secret. */
function setup(options: Partial<RefreshHandlerOptions> = {}, emulator: ClerkEmulatorOptions = {}) {
  const clock = { offsetMs: 0 }
  const clerk = createClerkEmulator({ now: () => Date.now() + clock.offsetMs, ...emulator })
  const aged = (ageMs: number) => {
    clock.offsetMs = -ageMs
    const session = clerk.createSession({ origin: ORIGIN })
    clock.offsetMs = 0
    return session
  }
  const session = aged(62_000)
  const handler = createRefreshHandler({
    secretKey: clerk.secretKey,
    publishableKey: clerk.publishableKey,
    apiUrl: API,
    origin: ORIGIN,
    fetch: clerk.fetch,
    ...options,
  })
  const secrets = [clerk.secretKey, session.refreshToken, session.sessionToken, session.sessionToken.split('.')[2]!]
  async function send(init: { method?: string; headers?: Record<string, string>; body?: unknown; token?: string } = {}) {
    const body = init.body !== undefined ? init.body : { session_id: session.sessionId, expired_token: init.token ?? session.sessionToken }
    const method = init.method ?? 'POST'
    const response = await handler(
      new Request(`${ORIGIN}/api/session/refresh`, {
        method,
        headers: {
          origin: ORIGIN,
          'content-type': 'application/json',
          cookie: `__refresh_${clerk.cookieSuffix}=${session.refreshToken}`,
          ...init.headers,
        },
        body: method === 'GET' ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      }),
    )
    const text = await response.text()
    for (const secret of secrets) expect(text).not.toContain(secret)
    return { status: response.status, headers: response.headers, ...(JSON.parse(text) as { error: { code: string; message: string } }) }
  }
  return { clerk, session, aged, handler, send, secrets }
}

describe('the envelope: origin, method, content type', () => {
  it('a foreign origin: the origin seen and the ones allowed', async () => {
    const { send } = setup()
    const { status, error } = await send({ headers: { origin: 'https://evil.example' } })
    expect(status).toBe(403)
    expect(error.message).toBe('The request origin "https://evil.example" is not allowed; allowed: https://app.example.com')
  })

  it('with allowedOrigins, every allowed origin is listed', async () => {
    const { send } = setup({ allowedOrigins: ['https://admin.example.com'] })
    const { error } = await send({ headers: { origin: 'https://evil.example' } })
    expect(error.message).toContain('allowed: https://app.example.com, https://admin.example.com')
  })

  it("without `origin`, the allowed one is the request's own", async () => {
    const { send } = setup({ origin: undefined })
    const { error } = await send({ headers: { origin: 'https://evil.example' } })
    expect(error.message).toBe(`The request origin "https://evil.example" is not allowed; allowed: ${ORIGIN}`)
  })

  it('no Origin header, and the opaque origin "null"', async () => {
    const { send } = setup()
    const none = await send({ headers: { origin: '' } })
    expect(none.error.message).toBe(`The request has no Origin header; allowed: ${ORIGIN}`)
    const opaque = await send({ headers: { origin: 'null' } })
    expect(opaque.error.message).toBe(`The request origin "null" is not allowed; allowed: ${ORIGIN}`)
  })

  it('Sec-Fetch-Site: cross-site names the header', async () => {
    const { send } = setup()
    const { status, error } = await send({ headers: { 'sec-fetch-site': 'cross-site' } })
    expect(status).toBe(403)
    expect(error.message).toContain('Sec-Fetch-Site: cross-site')
  })

  it('a method other than POST is named', async () => {
    const { send } = setup()
    const { status, error } = await send({ method: 'PUT' })
    expect(status).toBe(405)
    expect(error.message).toBe('Only POST is accepted, not PUT')
  })

  it('the content type seen, or that none was sent', async () => {
    const { send } = setup()
    expect((await send({ headers: { 'content-type': 'text/plain;charset=UTF-8' } })).error.message).toBe(
      'The body must be application/json, not "text/plain"',
    )
    const request = new Request(`${ORIGIN}/r`, { method: 'POST', headers: { origin: ORIGIN }, body: new Uint8Array([123, 125]) })
    const none = await (await setup().handler(request)).json()
    expect(none.error).toMatchObject({
      code: 'unsupported_media_type',
      message: 'The body must be application/json, no Content-Type was sent',
    })
  })
})

describe('the body', () => {
  it('too large: the limit, its option, and what was seen (declared or streamed)', async () => {
    const { send } = setup({ maxBodyBytes: 100 })
    const declared = await send({ body: 'x'.repeat(101), headers: { 'content-length': '101' } })
    expect(declared.status).toBe(413)
    expect(declared.error.message).toBe('The body must not exceed 100 bytes (`maxBodyBytes`); Content-Length is 101')
    const streamed = await send({ body: 'x'.repeat(500) })
    expect(streamed.error.message).toBe('The body must not exceed 100 bytes (`maxBodyBytes`); more arrived')
  })

  it('too large for toNodeHandler: the same message, before the handler runs', async () => {
    const server = createServer(toNodeHandler(setup().handler, { maxBodyBytes: 50 }))
    servers.push(server)
    const url = await listen(server)
    const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(60) })
    expect(response.status).toBe(413)
    expect((await response.json()).error.message).toBe('The body must not exceed 50 bytes (`maxBodyBytes`); Content-Length is 60')
  })

  it('not JSON: says so without quoting it (it may hold the token)', async () => {
    const { send, session } = setup()
    expect((await send({ body: '' })).error.message).toBe('The body is empty; expected { "session_id", "expired_token" }')
    const cut = JSON.stringify({ session_id: session.sessionId, expired_token: session.sessionToken }).slice(0, -2)
    const { status, error } = await send({ body: cut })
    expect(status).toBe(400)
    expect(error).toMatchObject({
      code: 'invalid_json',
      message: `The body (${cut.length} characters) is not valid JSON; expected { "session_id", "expired_token" }`,
    })
  })

  it.each([
    ['an array', [], 'The body must be a JSON object, not an array'],
    ['null', null, 'The body must be a JSON object, not null'],
    ['an unknown field', { refresh_token: 'x' }, 'Unknown field "refresh_token"; the fields are session_id, expired_token'],
    ['a numeric session_id', { session_id: 7 }, '"session_id" must be a session id (1 to 128 of A-Z a-z 0-9 _ -); got a number'],
    ['no session_id', {}, '"session_id" must be a session id (1 to 128 of A-Z a-z 0-9 _ -); it is missing'],
    [
      'a session_id with a slash',
      { session_id: '../v1' },
      '"session_id" must be a session id (1 to 128 of A-Z a-z 0-9 _ -); got other characters',
    ],
    ['a numeric expired_token', { session_id: 'sess_1', expired_token: 7 }, '"expired_token" must be a string, not a number'],
    [
      'no expired_token and no cookie',
      { session_id: 'sess_1' },
      '"expired_token" is missing, and no __session cookie came with the request',
    ],
  ])('%s: what came', async (_, body, message) => {
    const { send } = setup()
    const { status, error } = await send({ body })
    expect(status).toBe(400)
    expect(error.message).toBe(message)
  })

  it('a token pasted into session_id is described, never echoed', async () => {
    const { send, session } = setup()
    const { error } = await send({ body: { session_id: session.sessionToken } })
    expect(error.message).toBe(
      `"session_id" must be a session id (1 to 128 of A-Z a-z 0-9 _ -); got a string of ${session.sessionToken.length} characters`,
    )
  })

  it('a malformed token: why, from the decoder; a mismatched session: both ids', async () => {
    const { send, session } = setup()
    const malformed = await send({ body: { session_id: session.sessionId, expired_token: 'not-a-jwt' } })
    expect(malformed.error).toMatchObject({
      code: 'token_malformed',
      message: '"expired_token" is not a session JWT: Token has 1 segments, a JWT has 3',
    })
    const mismatch = await send({ body: { session_id: 'sess_other', expired_token: session.sessionToken } })
    expect(mismatch.error).toMatchObject({
      code: 'session_mismatch',
      message: `"session_id" is sess_other, but the token is of session "${session.sessionId}"`,
    })
  })

  it('the refresh cookie: absent, or present without a value', async () => {
    const { send, clerk } = setup()
    const name = `__refresh_${clerk.cookieSuffix}`
    expect((await send({ headers: { cookie: '' } })).error.message).toBe(
      `No ${name} cookie came with the request; it is planted by Clerk's handshake`,
    )
    expect((await send({ headers: { cookie: `${name}=` } })).error.message).toBe(
      `The ${name} cookie came with no value; it is planted by Clerk's handshake`,
    )
  })
})

describe('the token, checked before Clerk is asked', () => {
  it('another origin (azp): both origins', async () => {
    const { send, clerk } = setup()
    const foreign = clerk.createSession({ origin: 'https://other.example' })
    const { status, error } = await send({ body: { session_id: foreign.sessionId, expired_token: foreign.sessionToken } })
    expect(status).toBe(409)
    expect(error.message).toBe(
      'The session token was issued to "https://other.example" (azp), not to the request\'s origin "https://app.example.com"',
    )
  })

  it('another instance (iss), an unknown key (kid), another algorithm: what the token says', async () => {
    const { send, session } = setup()
    const other = createClerkEmulator({ publishableKey: 'pk_test_Y2xlcmsub3RoZXIudGVzdCQ' }).createSession({ origin: ORIGIN })
    const foreign = await send({ body: { session_id: other.sessionId, expired_token: other.sessionToken } })
    expect(foreign.error.message).toMatch(/^The session token is signed by an unknown key \(kid "[^"]+"\)$/)
    const [, payload, signature] = session.sessionToken.split('.')
    const hs256 = `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.${payload}.${signature}`
    expect((await send({ token: hs256 })).error.message).toBe('The session token is signed with "HS256", not RS256')
    const issuer = setup({ issuer: 'https://clerk.elsewhere.test' })
    expect((await issuer.send()).error.message).toBe(
      `The session token was issued by "${issuer.clerk.issuer}", not by this instance (https://clerk.elsewhere.test)`,
    )
  })
})

describe('Clerk, and the way to it', () => {
  async function closedPort(): Promise<string> {
    const server = createServer()
    const url = await listen(server)
    await close(server)
    return url
  }

  it('unreachable: the URL tried and the network error, never the secret key', async () => {
    const apiUrl = await closedPort()
    const { send, session } = setup({ apiUrl, fetch: undefined, verifyTokens: false })
    const { status, error } = await send()
    expect(status).toBe(503)
    expect(error.message).toBe(`Clerk could not be reached at ${apiUrl}/v1/sessions/${session.sessionId}/refresh (ECONNREFUSED)`)
  })

  it('unreachable for its signing keys: the JWKS URL', async () => {
    const apiUrl = await closedPort()
    const { send } = setup({ apiUrl, fetch: undefined })
    const { status, error } = await send()
    expect(status).toBe(503)
    expect(error.message).toBe(`Clerk could not be reached at ${apiUrl}/v1/jwks (ECONNREFUSED)`)
  })

  it('credentials in apiUrl never appear', async () => {
    const apiUrl = await closedPort()
    const withUser = apiUrl.replace('http://', 'http://admin:hunter2@')
    const { send } = setup({ apiUrl: withUser, fetch: undefined, verifyTokens: false })
    const { error } = await send()
    expect(error.message).toContain(`${apiUrl}/v1/sessions/`)
    expect(error.message).not.toContain('hunter2')
  })

  it('too slow: the timeout and the URL (for the refresh and for the keys)', async () => {
    const slow = (ms: number) => async (input: Request | string | URL, init?: RequestInit) => {
      await new Promise((resolve, reject) => {
        setTimeout(resolve, ms)
        const signal = input instanceof Request ? input.signal : init?.signal
        signal?.addEventListener('abort', () => reject(signal.reason))
      })
      throw new Error('not reached')
    }
    const refresh = await setup({ fetch: slow(1_000), timeoutMs: 100, verifyTokens: false }).send()
    expect(refresh.status).toBe(504)
    expect(refresh.error.message).toMatch(
      /^Clerk did not answer within 100 ms \(https:\/\/api\.clerk\.test\/v1\/sessions\/sess_\w+\/refresh\)$/,
    )
    const keys = await setup({ fetch: slow(1_000), timeoutMs: 100 }).send()
    expect(keys.status).toBe(504)
    expect(keys.error.message).toBe('Clerk did not answer within 100 ms (https://api.clerk.test/v1/jwks)')
  })

  it('an apiUrl that is not Clerk (a 404 page): the status and the URL', async () => {
    const notClerk = async () => new Response('<html>Not Found</html>', { status: 404, headers: { 'content-type': 'text/html' } })
    const { send, session } = setup({ verifyTokens: false, apiUrl: 'https://www.example.com/api', fetch: notClerk })
    const { status, error } = await send()
    expect(status).toBe(502)
    expect(error.message).toBe(`Clerk answered 404 to POST https://www.example.com/api/v1/sessions/${session.sessionId}/refresh`)
  })

  it('a 5xx: the status and code; a refused key: which code, and which option to check', async () => {
    const failing = setup({}, {})
    failing.clerk.setFaults({ failNext: 1, failStatus: 500 })
    expect((await failing.send()).error.message).toMatch(
      /^Clerk is unavailable: it answered 500 internal_clerk_error to POST https:\/\/api\.clerk\.test\//,
    )
    const wrongKey = setup({ secretKey: 'sk_test_wrong', verifyTokens: false })
    const { status, error } = await wrongKey.send()
    expect(status).toBe(502)
    expect(error.message).toBe('Clerk refused the secret key (401 clerk_key_invalid): check `secretKey`')
    expect(error.message).not.toContain('sk_test_wrong')
  })

  it('the JWKS refused: which call', async () => {
    const { send } = setup({ secretKey: 'sk_test_wrong' })
    const { status, error } = await send()
    expect(status).toBe(502)
    expect(error.message).toBe(`Clerk refused the secret key (401 from GET ${API}/v1/jwks)`)
  })

  it("Clerk's refusals and rate limits: the code and the wait", async () => {
    const { send, clerk } = setup()
    const limited = setup()
    limited.clerk.setFaults({ failNext: 1, failStatus: 429, retryAfterSeconds: 7 })
    expect((await limited.send()).error.message).toBe('Clerk rate-limited this refresh (429 too_many_requests); retry in 7 s')
    const unknown = await send({ headers: { cookie: `__refresh_${clerk.cookieSuffix}=guessed` } })
    expect(unknown.error.message).toBe('Clerk refused this refresh (401 refresh_token_not_found); the page must go through Clerk')
  })

  it('a token of another session in the answer: both sessions', async () => {
    const { send, session } = setup({
      verifyTokens: false,
      fetch: async () => Response.json({ object: 'token', jwt: makeJwt({ sid: 'sess_intruder', iat: 1, exp: 2 }) }),
    })
    expect((await send()).error.message).toBe(
      `Clerk answered 200 with a token of another session (sess_intruder, not ${session.sessionId})`,
    )
  })
})

describe('the proxy’s own answers', () => {
  it('its rate limits: which limit, its size and the wait', async () => {
    const { send, clerk } = setup({ rateLimit: { perSession: 1 } })
    expect((await send()).status).toBe(200)
    // The same session with another cookie: not a replay, so a second call, past the limit.
    const { status, error } = await send({ headers: { cookie: `__refresh_${clerk.cookieSuffix}=guessed` } })
    expect(status).toBe(429)
    expect(error.message).toMatch(/^Too many refreshes: the limit per session is 1 calls to Clerk per 60 s; retry in \d+ s$/)
  })

  it('the upstream budget: its size', async () => {
    const { send, aged } = setup({ upstreamBudget: { max: 1, windowMs: 10_000 }, verifyTokens: false })
    await send()
    const other = aged(62_000)
    const { status, error } = await send({ body: { session_id: other.sessionId, expired_token: other.sessionToken } })
    expect(status).toBe(429)
    expect(error.message).toMatch(/^Too many refreshes: the app's upstream budget is 1 calls to Clerk per 10 s; retry in \d+ s$/)
  })

  it('not yet expired: in how long', async () => {
    const { send, aged } = setup({ earlyRefresh: 'never' })
    const fresh = aged(10_000)
    const { status, error, headers } = await send({ body: { session_id: fresh.sessionId, expired_token: fresh.sessionToken } })
    expect(status).toBe(503)
    expect(error.message).toBe(`Clerk refreshes this token only once it has expired, in ${headers.get('retry-after')} s`)
  })
})

describe('start-up errors name the value, never a secret key', () => {
  const base = { secretKey: 'sk_test_x', publishableKey: 'pk_test_eC50ZXN0JA' }
  it.each([
    [{ publishableKey: 'pk_nope' }, 'got "pk_nope"'],
    [{ apiUrl: 'http://api.clerk.com' }, 'got http://api.clerk.com'],
    [{ apiUrl: 'nonsense' }, '`apiUrl` is not a URL: got "nonsense"'],
    [{ origin: 'https://app.example.com/path' }, '"https://app.example.com/path" is not an origin'],
    [{ trustedHops: 0 }, '`trustedHops` must be a whole number ≥ 1: got 0'],
  ] as [Partial<RefreshHandlerOptions>, string][])('%o → %s', (options, text) => {
    expect(() => createRefreshHandler({ ...base, ...options })).toThrow(
      expect.objectContaining({ name: 'TypeError', message: expect.stringContaining(text) }),
    )
  })

  it('a secret key given as the publishable key is not printed', () => {
    const secret = 'sk_live_abcdefghijklmnop'
    let message = ''
    try {
      createRefreshHandler({ secretKey: secret, publishableKey: secret })
    } catch (error) {
      message = (error as Error).message
    }
    expect(message).toContain('got a secret key (sk_…)')
    expect(message).not.toContain(secret)
  })
})
