// @vitest-environment node
/**
 * The `/server` entry, unchanged, inside Cloudflare's `workerd` (through miniflare), refreshing
 * against the emulator on 127.0.0.1.
 */
import { build } from 'esbuild'
import { Miniflare } from 'miniflare'
import { createServer } from 'node:http'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { toNodeHandler } from '../../src/server/index.js'
import { createClerkEmulator } from '../../src/testing/index.js'
import { close, listen } from '../helpers/servers.js'

const ORIGIN = 'https://app.example.test'
const WORKER = `
import { createRefreshHandler } from 'session-keeper/server'
let handler
export default {
  fetch(request, env) {
    handler ??= createRefreshHandler({ secretKey: env.SECRET_KEY, publishableKey: env.PUBLISHABLE_KEY, apiUrl: env.API_URL, origin: env.ORIGIN })
    return handler(request)
  },
}`

const clock = { offsetMs: 0 }
const clerk = createClerkEmulator({ now: () => Date.now() + clock.offsetMs })
const server = createServer(toNodeHandler(clerk.handler, { maxBodyBytes: 1 << 20 }))
let mf: Miniflare

beforeAll(async () => {
  const apiUrl = await listen(server)
  const bundle = await build({
    stdin: { contents: WORKER, resolveDir: fileURLToPath(new URL('.', import.meta.url)), loader: 'js' },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    write: false,
    alias: { 'session-keeper/server': fileURLToPath(new URL('../../src/server/index.ts', import.meta.url)) },
  })
  mf = new Miniflare({
    modules: true,
    script: bundle.outputFiles[0]!.text,
    compatibilityDate: '2024-09-23',
    bindings: { SECRET_KEY: clerk.secretKey, PUBLISHABLE_KEY: clerk.publishableKey, API_URL: apiUrl, ORIGIN },
  })
}, 60_000)

afterAll(async () => {
  await mf?.dispose()
  await close(server)
})

describe('the proxy in workerd', () => {
  it('refreshes through the emulator, verifies the token and sets both session cookies', async () => {
    clock.offsetMs = -62_000
    const session = clerk.createSession({ origin: ORIGIN })
    clock.offsetMs = 0
    const response = await mf.dispatchFetch(`${ORIGIN}/api/session/refresh`, {
      method: 'POST',
      headers: { origin: ORIGIN, 'content-type': 'application/json', cookie: `__refresh_${clerk.cookieSuffix}=${session.refreshToken}` },
      body: JSON.stringify({ session_id: session.sessionId, expired_token: session.sessionToken }),
    })
    expect(response.status).toBe(200)
    const { jwt } = (await response.json()) as { jwt: string }
    expect(jwt).toMatch(/^ey/)
    expect(response.headers.getSetCookie?.() ?? [response.headers.get('set-cookie')]).toHaveLength(2)
    expect(clerk.stats().refreshes).toBe(1)
    expect(clerk.requests().map((r) => r.path)).toEqual(['/v1/jwks', `/v1/sessions/${session.sessionId}/refresh`])
  })

  it('refuses a forged token without calling Clerk, and a foreign origin', async () => {
    const session = clerk.createSession({ origin: ORIGIN })
    const before = clerk.requests().length
    const forged = await mf.dispatchFetch(`${ORIGIN}/api/session/refresh`, {
      method: 'POST',
      headers: { origin: ORIGIN, 'content-type': 'application/json', cookie: `__refresh_${clerk.cookieSuffix}=x` },
      body: JSON.stringify({ session_id: session.sessionId, expired_token: `${session.sessionToken.slice(0, -8)}AAAAAAAA` }),
    })
    expect(forged.status).toBe(409)
    const foreign = await mf.dispatchFetch(`${ORIGIN}/api/session/refresh`, {
      method: 'POST',
      headers: { origin: 'https://evil.test', 'content-type': 'application/json' },
      body: '{}',
    })
    expect(foreign.status).toBe(403)
    expect(clerk.requests().length).toBe(before)
  })
})
