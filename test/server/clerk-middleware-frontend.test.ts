// @vitest-environment node
/**
 * The emulator's Frontend API and handshake payloads on their own, without a middleware: instance
 * types, what each route refuses, and what a handshake hands over.
 */
import { describe, expect, it } from 'vitest'
import { createClerkEmulator, publishableKeyFor } from '../../src/testing/index.js'

const APP = 'http://127.0.0.1:4000'
const fapi = (path: string, init: RequestInit = {}) => new Request(`${APP}/__clerk${path}`, init)
const codeOf = async (response: Response) => ((await response.json()) as { errors: { code: string }[] }).errors[0]!.code
const cookieNames = (response: Response) => response.headers.getSetCookie().map((c) => c.slice(0, c.indexOf('=')))
const home = encodeURIComponent(`${APP}/`)

describe('the emulator as a production or a development instance', () => {
  it('has a pk_live_ key and an sk_live_ secret for production, pk_test_/sk_test_ for development (the default)', () => {
    const production = createClerkEmulator({ instanceType: 'production' })
    expect(production).toMatchObject({ instanceType: 'production', secretKey: 'sk_live_emulator' })
    expect(production.publishableKey).toBe(publishableKeyFor('clerk.emulator.local', 'live'))
    const development = createClerkEmulator({ instanceType: 'development' })
    expect(development).toMatchObject({ instanceType: 'development', secretKey: 'sk_test_emulator' })
    expect(development.publishableKey).toBe(publishableKeyFor('clerk.emulator.local', 'test'))
    expect(createClerkEmulator()).toMatchObject({ instanceType: 'development', publishableKey: development.publishableKey })
    expect(createClerkEmulator({ publishableKey: publishableKeyFor('clerk.x.test', 'live') }).instanceType).toBe('production')
  })

  it('refuses an unknown instance type, or one its publishable key contradicts, with a TypeError that says so', () => {
    expect(() => createClerkEmulator({ instanceType: 'staging' as 'production' })).toThrow(
      new TypeError(`createClerkEmulator: \`instanceType\` must be 'production' or 'development', not "staging"`),
    )
    expect(() => createClerkEmulator({ instanceType: 'production', publishableKey: publishableKeyFor('clerk.x.test', 'test') })).toThrow(
      /a production instance needs a pk_live_… publishable key/,
    )
  })
})

describe("the emulator's Frontend API", () => {
  it.each([
    ['/sign-in', 'form_param_missing'],
    [`/sign-in?redirect_url=${encodeURIComponent('javascript:alert(1)')}`, 'form_param_format_invalid'],
    [`/sign-in?redirect_url=${encodeURIComponent('https://evil.example/')}`, 'form_param_value_invalid'],
    [`/sign-in?redirect_url=${home}&user_id=${encodeURIComponent('<script>')}`, 'form_param_format_invalid'],
    [`/v1/client/handshake?redirect_url=${home}&format=xml`, 'form_param_value_invalid'],
    [`/v1/client/handshake?redirect_url=${home}&format=nonce&suffixed_cookies=maybe`, 'form_param_value_invalid'],
    [`/sign-out?redirect_url=${encodeURIComponent('//evil.example/')}`, 'form_param_format_invalid'],
  ])('answers 422 to %s: %s', async (path, code) => {
    const clerk = createClerkEmulator({ instanceType: 'production' })
    const response = await clerk.frontendHandler(fapi(path))
    expect(response.status).toBe(422)
    expect(await codeOf(response)).toBe(code)
    expect(response.headers.get('location')).toBeNull()
  })

  it('answers 404 to an unknown path, 405 to a wrong method, 404 to an unknown session, 403 to a foreign origin', async () => {
    const clerk = createClerkEmulator({ instanceType: 'production' })
    expect((await clerk.frontendHandler(fapi('/v1/nothing'))).status).toBe(404)
    expect((await clerk.frontendHandler(fapi('/v1/client/sessions/sess_x/end'))).status).toBe(405)
    expect((await clerk.frontendHandler(fapi('/v1/client/sessions/sess_x/end', { method: 'POST' }))).status).toBe(404)
    const foreign = fapi('/v1/client/sessions/sess_x/end', { method: 'POST', headers: { origin: 'https://evil.example' } })
    expect((await clerk.frontendHandler(foreign)).status).toBe(403)
  })

  it('allows a redirect_url on another origin only when listed in redirectOrigins', async () => {
    const clerk = createClerkEmulator({ instanceType: 'production', redirectOrigins: ['http://127.0.0.1:5173'] })
    const response = await clerk.frontendHandler(fapi(`/sign-in?redirect_url=${encodeURIComponent('http://127.0.0.1:5173/x')}`))
    expect(response.status).toBe(302)
    expect(response.headers.get('location')).toBe('http://127.0.0.1:5173/x')
  })

  it('signs a production browser in with an HttpOnly __client cookie on its own path and __client_uat on the app', async () => {
    const clerk = createClerkEmulator({ instanceType: 'production', now: () => 1_800_000_000_000 })
    const response = await clerk.frontendHandler(fapi(`/sign-in?redirect_url=${home}&user_id=user_a`))
    expect(response.status).toBe(302)
    expect(response.headers.get('location')).toBe(`${APP}/`)
    expect(response.headers.getSetCookie()).toEqual([
      '__client_uat=1800000000; Path=/; Max-Age=31536000; Secure; SameSite=Lax',
      `__client_uat_${clerk.cookieSuffix}=1800000000; Path=/; Max-Age=31536000; Secure; SameSite=Lax`,
      expect.stringMatching(/^__client=client_\w+; Path=\/__clerk; Max-Age=31536000; HttpOnly; Secure; SameSite=Lax$/),
    ])
  })

  it('hands a development browser its dev-browser token in the redirect, as the Account Portal does', async () => {
    const clerk = createClerkEmulator({ instanceType: 'development' })
    const created = await clerk.frontendHandler(fapi('/v1/dev_browser', { method: 'POST' }))
    const { object, id } = await created.json()
    expect(object).toBe('dev_browser')
    const signIn = await clerk.frontendHandler(fapi(`/sign-in?redirect_url=${home}&__clerk_db_jwt=${id}`))
    expect(new URL(signIn.headers.get('location')!).searchParams.get('__clerk_db_jwt')).toBe(id)
    expect(cookieNames(signIn)).not.toContain('__client')
    // Its handshake comes back in the query (the Frontend API is on another site), with the token.
    const handshake = await clerk.frontendHandler(fapi(`/v1/client/handshake?redirect_url=${home}&format=nonce&__clerk_db_jwt=${id}`))
    const back = new URL(handshake.headers.get('location')!)
    expect([...back.searchParams.keys()]).toEqual(['__clerk_db_jwt', '__clerk_handshake_nonce'])
    expect(back.searchParams.get('__clerk_db_jwt')).toBe(id)
    expect(handshake.headers.getSetCookie()).toEqual([])
    expect(
      (await createClerkEmulator({ instanceType: 'production' }).frontendHandler(fapi('/v1/dev_browser', { method: 'POST' }))).status,
    ).toBe(404)
  })

  it('hands over a handshake once per nonce, to the secret key only, and never echoes the nonce', async () => {
    const clerk = createClerkEmulator({ instanceType: 'production' })
    const handshake = await clerk.frontendHandler(fapi(`/v1/client/handshake?redirect_url=${home}&format=nonce&suffixed_cookies=false`))
    expect(handshake.status).toBe(307)
    const [nonceCookie] = handshake.headers.getSetCookie()
    expect(nonceCookie).toMatch(/^__clerk_handshake_nonce=\w+; Path=\/; Max-Age=60; HttpOnly; Secure; SameSite=Lax$/)
    const nonce = nonceCookie!.split(/[=;]/)[1]!
    const payload = (secret: string, query = `?nonce=${nonce}`) =>
      clerk.handler(new Request(`http://api.test/v1/clients/handshake_payload${query}`, { headers: { authorization: `Bearer ${secret}` } }))
    expect(await codeOf(await payload('sk_live_wrong'))).toBe('clerk_key_invalid')
    expect(await codeOf(await payload(clerk.secretKey, ''))).toBe('form_param_missing')
    const first = await payload(clerk.secretKey)
    expect(first.status).toBe(200)
    const { directives } = await first.json()
    // No client: the directives sign out, every form of every name (whatever was asked), session cookies last.
    expect(directives.map((d: string) => d.slice(0, d.indexOf(';')))).toEqual([
      '__clerk_handshake_nonce=',
      '__clerk_handshake=',
      '__client_uat=0',
      `__client_uat_${clerk.cookieSuffix}=0`,
      `__refresh_${clerk.cookieSuffix}=`,
      `__session_${clerk.cookieSuffix}=`,
      '__session=',
    ])
    const again = await payload(clerk.secretKey)
    expect(again.status).toBe(404)
    expect(await again.text()).not.toContain(nonce)
    expect(clerk.stats()).toMatchObject({ handshakes: 1, byHandshakeReason: { unknown: 1 } })
  })

  it('a handshake for a signed-in client mints a token of the same session, with the refresh token, session cookies last', async () => {
    const clerk = createClerkEmulator({ instanceType: 'production' })
    const signIn = await clerk.frontendHandler(fapi(`/sign-in?redirect_url=${home}&user_id=user_b`))
    const client = signIn.headers
      .getSetCookie()
      .find((c) => c.startsWith('__client='))!
      .split(';')[0]!
    const handshake = await clerk.frontendHandler(
      fapi(`/v1/client/handshake?redirect_url=${home}&format=token&suffixed_cookies=false`, { headers: { cookie: client } }),
    )
    const token = handshake.headers.getSetCookie()[0]!.split(/[=;]/)[1]!
    const { handshake: directives } = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString())
    const names = directives.map((d: string) => d.slice(0, d.indexOf('=')))
    expect(names).toEqual(['__clerk_handshake_nonce', '__clerk_handshake', '__client_uat', `__refresh_${clerk.cookieSuffix}`, '__session'])
    const jwt = directives.at(-1).split(/[=;]/)[1]
    expect(JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString())).toMatchObject({ sub: 'user_b', azp: APP })
    expect(directives[3]).toMatch(/; HttpOnly; Secure; SameSite=Lax$/)
  })
})
