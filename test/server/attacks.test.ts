// @vitest-environment node
/**
 * The proxy under attack, on 127.0.0.1 with the emulator upstream. Each test is named after the
 * attack and checks what the attacker gets now.
 */
import { connect } from 'node:net'
import { createServer } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { sleep } from '../helpers/time.js'
import { createRefreshHandler, toNodeHandler } from '../../src/server/index.js'
import { createClerkEmulator } from '../../src/testing/index.js'
import { makeJwt } from '../helpers/jwt.js'
import { close, listen, startStack, type Stack } from '../helpers/servers.js'

let stack: Stack | undefined
afterEach(async () => {
  await stack?.close()
  stack = undefined
})

const bad = (s: Stack) => ({ cookie: `__refresh_${s.clerk.cookieSuffix}=attacker-guess` })

/** Raw HTTP on a socket: what a non-browser client can send. Resolves with the response text. */
function raw(url: string, text: string | ((socket: ReturnType<typeof connect>) => void), timeoutMs = 5_000): Promise<string> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve) => {
    let answer = ''
    const socket = connect(Number(port), hostname, () => (typeof text === 'string' ? socket.write(text) : text(socket)))
    socket.on('data', (chunk) => (answer += chunk))
    socket.on('close', () => resolve(answer))
    socket.on('error', () => resolve(answer))
    setTimeout(() => {
      socket.destroy()
      resolve(answer)
    }, timeoutMs)
  })
}

describe('1. a leaked session JWT with a made-up refresh cookie', () => {
  it("joining the victim's in-flight refresh gets nothing: coalescing is per refresh credential", async () => {
    stack = await startStack()
    stack.clerk.setFaults({ latencyMs: 200 })
    const victim = stack.request()
    await sleep(50)
    const attacker = await stack.request({ headers: bad(stack) })
    expect(attacker.status).toBe(409)
    const text = await attacker.text()
    expect(attacker.headers.getSetCookie()).toEqual([])
    const ok = await victim
    expect(ok.status).toBe(200)
    expect(text).not.toContain((await ok.json()).jwt)
  })

  it('a doomed call started first does not drag the victim down with it', async () => {
    stack = await startStack()
    stack.clerk.setFaults({ latencyMs: 200 })
    const attacker = stack.request({ headers: bad(stack) })
    await sleep(50)
    const victim = await stack.request()
    expect(victim.status).toBe(200)
    expect((await attacker).status).toBe(409)
  })

  it('a stored refresh result is never replayed to another credential', async () => {
    stack = await startStack()
    expect((await stack.request()).status).toBe(200)
    const attacker = await stack.request({ headers: bad(stack) })
    expect(attacker.status).toBe(409)
    expect(attacker.headers.getSetCookie()).toEqual([])
  })

  it('the first requester going away does not abort the call the others share', async () => {
    stack = await startStack()
    stack.clerk.setFaults({ latencyMs: 300 })
    const gone = new AbortController()
    const first = stack.request({ signal: gone.signal }).catch(() => null)
    await sleep(30)
    const second = stack.request()
    await sleep(50)
    gone.abort()
    expect(await first).toBeNull()
    expect((await second).status).toBe(200)
    expect(stack.upstreamCalls).toBe(1)
  })

  it('a flood with the leaked JWT is capped per session: 429 with Retry-After, Clerk sees at most the limit', async () => {
    stack = await startStack({ rateLimit: { perSession: 3, perClient: 1_000 } })
    const answers = []
    for (let i = 0; i < 10; i++) answers.push(await stack.request({ headers: bad(stack) }))
    expect(answers.map((r) => r.status)).toEqual([409, 409, 409, 429, 429, 429, 429, 429, 429, 429])
    expect(Number(answers[9]!.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(stack.upstreamCalls).toBe(3)
  })

  it('and per client', async () => {
    stack = await startStack({ rateLimit: { perSession: 1_000, perClient: 2 } })
    for (let i = 0; i < 2; i++) await stack.request({ headers: bad(stack) })
    const third = await stack.request({ headers: bad(stack) })
    expect(third.status).toBe(429)
    expect(stack.upstreamCalls).toBe(2)
  })
})

describe('2. unsigned and foreign tokens', () => {
  const forgeries: [string, (s: Stack) => string][] = [
    [
      'alg: none',
      (s) => {
        const [, payload] = s.session.sessionToken.split('.')
        return `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${payload}.`
      },
    ],
    ['a forged signature', (s) => `${s.session.sessionToken.slice(0, -8)}AAAAAAAA`],
    [
      'unsigned claims of the right session',
      (s) => makeJwt({ sid: s.session.sessionId, iat: 1, exp: 2, iss: s.clerk.issuer, azp: s.origin }),
    ],
    [
      'exp: 1e300',
      (s) => makeJwt({ sid: s.session.sessionId, iat: Math.floor(Date.now() / 1000), exp: 1e300, iss: s.clerk.issuer, azp: s.origin }),
    ],
  ]

  it.each(forgeries)('%s never reaches Clerk', async (_, forge) => {
    stack = await startStack()
    const response = await stack.request({ token: forge(stack) })
    expect([400, 409]).toContain(response.status)
    expect(stack.upstreamCalls).toBe(0)
  })

  it("another Clerk instance's genuine token never reaches Clerk", async () => {
    stack = await startStack()
    const other = createClerkEmulator({ publishableKey: 'pk_test_Y2xlcmsub3RoZXIudGVzdCQ' }).createSession({ origin: stack.origin })
    const response = await stack.request({ body: { session_id: other.sessionId, expired_token: other.sessionToken } })
    expect(response.status).toBe(409)
    expect((await response.json()).error.reason).toBe('token_invalid')
    expect(stack.upstreamCalls).toBe(0)
  })

  it('a token issued to another origin (azp) never reaches Clerk', async () => {
    stack = await startStack()
    const foreign = stack.clerk.createSession({ origin: 'https://other-app.test' })
    const response = await stack.request({
      body: { session_id: foreign.sessionId, expired_token: foreign.sessionToken },
      headers: { cookie: `__refresh_${stack.clerk.cookieSuffix}=${foreign.refreshToken}` },
    })
    expect(response.status).toBe(409)
    expect((await response.json()).error.reason).toBe('origin_azp_mismatch')
    expect(stack.upstreamCalls).toBe(0)
  })

  it('150 anonymous forged requests spend no quota; the victim still refreshes', async () => {
    stack = await startStack()
    for (let i = 0; i < 150; i++) await stack.request({ token: forgeries[i % forgeries.length]![1](stack), headers: bad(stack) })
    expect(stack.upstreamCalls).toBe(0)
    expect((await stack.request()).status).toBe(200)
  })

  it('verifies with a PEM jwtKey and no network, and refuses a token of another key', async () => {
    stack = await startStack()
    const jwks = await (await fetch(`${stack.apiUrl}/v1/jwks`, { headers: { authorization: `Bearer ${stack.clerk.secretKey}` } })).json()
    const { createPublicKey } = await import('node:crypto')
    const jwtKey = createPublicKey({ key: jwks.keys[0], format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString()
    let jwksFetches = 0
    const handler = createRefreshHandler({
      secretKey: stack.clerk.secretKey,
      publishableKey: stack.clerk.publishableKey,
      apiUrl: stack.apiUrl,
      jwtKey,
      fetch: (input, init) => {
        if (String(input instanceof Request ? input.url : input).endsWith('/jwks')) jwksFetches++
        return fetch(input, init)
      },
    })
    const call = (token: string) =>
      handler(
        new Request(`${stack!.origin}/r`, {
          method: 'POST',
          headers: { origin: stack!.origin, 'content-type': 'application/json', cookie: stack!.refreshCookie },
          body: JSON.stringify({ session_id: stack!.session.sessionId, expired_token: token }),
        }),
      )
    expect((await call(`${stack.session.sessionToken.slice(0, -8)}AAAAAAAA`)).status).toBe(409)
    expect((await call(stack.session.sessionToken)).status).toBe(200)
    expect(jwksFetches).toBe(0)
  })
})

describe('3. slow and oversized bodies', () => {
  it('a Content-Length of 1 GB is refused at once, unread', async () => {
    stack = await startStack()
    const started = Date.now()
    const answer = await raw(
      stack.url,
      `POST /api/session/refresh HTTP/1.1\r\nHost: x\r\nOrigin: ${stack.origin}\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n{`,
    )
    expect(answer).toMatch(/^HTTP\/1\.1 413/)
    expect(answer).toMatch(/x-content-type-options: nosniff/i)
    expect(answer).toContain('"body_too_large"')
    expect(Date.now() - started).toBeLessThan(2_000)
  })

  it('an endless chunked body from a foreign Origin is refused before anything is read, and the connection closed', async () => {
    stack = await startStack()
    let written = 0
    const answer = await raw(stack.url, (socket) => {
      socket.write(
        `POST /api/session/refresh HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.test\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`,
      )
      const chunk = `4000\r\n${'x'.repeat(0x4000)}\r\n`
      const pump = setInterval(() => {
        if (socket.destroyed || written > 64 << 20) return clearInterval(pump)
        socket.write(chunk)
        written += chunk.length
      }, 1)
    })
    expect(answer).toMatch(/^HTTP\/1\.1 403/)
    expect(written).toBeLessThan(16 << 20) // closed long before the 64 MiB the client would send
  })

  it('a body that drips in is cut off at bodyTimeoutMs with 408', async () => {
    stack = await startStack({ bodyTimeoutMs: 400 })
    const started = Date.now()
    const answer = await raw(stack.url, (socket) => {
      socket.write(
        `POST /api/session/refresh HTTP/1.1\r\nHost: ${new URL(stack!.origin).host}\r\nOrigin: ${stack!.origin}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{`,
      )
      const drip = setInterval(() => (socket.destroyed ? clearInterval(drip) : socket.write(' ')), 100)
    })
    expect(answer).toMatch(/^HTTP\/1\.1 408/)
    expect(Date.now() - started).toBeLessThan(2_000)
  })

  it('with 300 dripping connections open, legitimate refreshes still succeed', async () => {
    stack = await startStack({ bodyTimeoutMs: 3_000, rateLimit: false })
    const drips = Array.from({ length: 300 }, () =>
      raw(
        stack!.url,
        (socket) => {
          socket.write(
            `POST /api/session/refresh HTTP/1.1\r\nHost: ${new URL(stack!.origin).host}\r\nOrigin: ${stack!.origin}\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n`,
          )
          const drip = setInterval(() => (socket.destroyed ? clearInterval(drip) : socket.write(' ')), 200)
        },
        6_000,
      ),
    )
    await sleep(300)
    const latencies: number[] = []
    for (let i = 0; i < 10; i++) {
      const s = stack.sessionAged(62_000)
      const started = Date.now()
      const response = await stack.request({
        body: { session_id: s.sessionId, expired_token: s.sessionToken },
        headers: { cookie: `__refresh_${stack.clerk.cookieSuffix}=${s.refreshToken}` },
      })
      latencies.push(Date.now() - started)
      expect(response.status).toBe(200)
    }
    const answers = await Promise.all(drips)
    expect(answers.filter((a) => a.startsWith('HTTP/1.1 408')).length).toBe(300)
    console.log(`refresh latency with 300 dripping connections: median ${latencies.sort((a, b) => a - b)[5]} ms, max ${latencies[9]} ms`)
  })
})

describe('4. credentials in request_headers', () => {
  it('only headers that describe the browser reach Clerk', async () => {
    stack = await startStack()
    const secrets = {
      'x-amzn-oidc-data': 'eyJ.alb.oidc',
      'x-amzn-oidc-accesstoken': 'alb-access',
      'x-auth-request-access-token': 'oauth2-proxy',
      'cf-access-jwt-assertion': 'cf.jwt',
      'x-goog-iap-jwt-assertion': 'iap.jwt',
      'x-ms-client-principal': 'easyauth',
      'x-forwarded-client-cert': 'Hash=abc',
      'x-csrf-token': 'csrf',
      'x-api-key': 'key',
      'x-forwarded-for': '6.6.6.6',
      referer: 'https://app.test/callback?code=oauth-code-secret#frag',
    }
    await stack.request({ headers: { ...secrets, 'user-agent': 'UA, with commas' } })
    const sent = JSON.stringify(stack.upstreamBodies[0])
    for (const value of Object.values(secrets)) expect(sent).not.toContain(value)
    expect((stack.upstreamBodies[0] as { request_headers: Record<string, string[]> }).request_headers.referer).toEqual([
      'https://app.test/callback',
    ])
  })
})

describe('5. the rest', () => {
  it('an upstream redirect is never followed: 502, and the refresh token goes nowhere else', async () => {
    let stolen = 0
    const evil = createServer((_, res) => {
      stolen++
      res.end('{}')
    })
    const evilUrl = await listen(evil)
    stack = await startStack({
      fetch: async (input, init) => {
        const url = input instanceof Request ? input.url : String(input)
        if (!url.includes('/refresh')) return fetch(input, init)
        const redirector = createServer((_, res) => res.writeHead(307, { Location: `${evilUrl}/steal` }).end())
        const at = await listen(redirector)
        try {
          return await fetch(input instanceof Request ? new Request(at + new URL(url).pathname, input) : at, init)
        } finally {
          await close(redirector)
        }
      },
    })
    const response = await stack.request()
    expect(response.status).toBe(502)
    expect((await response.json()).error.code).toBe('upstream_bad_response')
    expect(stolen).toBe(0)
    await close(evil)
  })

  it('an absolute-form request target does not choose the origin', async () => {
    stack = await startStack()
    const body = JSON.stringify({ session_id: stack.session.sessionId, expired_token: stack.session.sessionToken })
    const answer = await raw(
      stack.url,
      `POST http://evil.test/api/session/refresh HTTP/1.1\r\nHost: ${new URL(stack.origin).host}\r\nOrigin: http://evil.test\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    )
    expect(answer).toMatch(/^HTTP\/1\.1 403/)
  })

  it('with `origin` set, a forged Host does not vouch for a forged Origin', async () => {
    stack = await startStack({ origin: 'http://127.0.0.1:1' })
    const response = await stack.request({ headers: { origin: 'http://evil.test', host: 'evil.test' } })
    expect(response.status).toBe(403)
  })

  it('Retry-After from a token with an absurd exp is capped', async () => {
    const handler = createRefreshHandler({
      refreshCookieName: '__refresh',
      verifyTokens: false,
      upstream: async () => {
        throw Object.assign(
          new (await import('../../src/server/index.js')).ProxyError(
            409,
            'recovery_required',
            'x',
            {},
            'session_refresh_session_token_ineligible',
          ),
        )
      },
    })
    const now = Math.floor(Date.now() / 1000)
    const token = makeJwt({ sid: 'sess_1', iat: now, exp: now + 10 * 365 * 86_400 })
    const response = await handler(
      new Request('http://a.test/r', {
        method: 'POST',
        headers: { origin: 'http://a.test', 'content-type': 'application/json', cookie: '__refresh=x' },
        body: JSON.stringify({ session_id: 'sess_1', expired_token: token }),
      }),
    )
    expect(response.status).toBe(503)
    expect(Number(response.headers.get('retry-after'))).toBeLessThanOrEqual(3_600)
  })

  it('a refresh cookie tossed onto the parent domain by a sibling subdomain does not stop the real one', async () => {
    stack = await startStack()
    const tossed = `__refresh_${stack.clerk.cookieSuffix}=tossed-by-evil-subdomain`
    const response = await stack.request({ headers: { cookie: `${tossed}; ${stack.refreshCookie}` } })
    expect(response.status).toBe(200)
  })

  it('refuses apiUrl over plain http outside loopback, and a missing publishableKey, at start-up', () => {
    expect(() =>
      createRefreshHandler({ secretKey: 'sk_test_x', publishableKey: 'pk_test_eC50ZXN0JA', apiUrl: 'http://api.clerk.com' }),
    ).toThrow(TypeError)
    expect(() => createRefreshHandler({ secretKey: 'sk_test_x' })).toThrow(/publishableKey/)
    expect(() => createRefreshHandler({ secretKey: 'sk_test_x', publishableKey: 'pk_nope' })).toThrow(/publishable key/)
    expect(() =>
      createRefreshHandler({ secretKey: 'sk_test_x', publishableKey: 'pk_test_eC50ZXN0JA', apiUrl: 'http://127.0.0.1:9' }),
    ).not.toThrow()
  })

  it('a crashing handler answers 500 in JSON with nosniff', async () => {
    const server = createServer(
      toNodeHandler(async () => {
        throw new Error('boom')
      }),
    )
    const url = await listen(server)
    const response = await fetch(url, { method: 'POST' })
    expect(response.status).toBe(500)
    expect(response.headers.get('x-content-type-options')).toBe('nosniff')
    expect((await response.json()).error.code).toBe('internal_error')
    await close(server)
  })
})
