// @vitest-environment node
/**
 * Issue 16: a refresh cookie without a usable value never reaches Clerk. Clerk would answer 422
 * for an empty `refresh_token`, the proxy 502, and the browser would retry until its token expired.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../helpers/servers.js'

let stack: Stack | undefined
afterEach(async () => {
  await stack?.close()
  stack = undefined
})

const refreshCalls = (s: Stack) => s.clerk.requests().filter((r) => r.path.endsWith('/refresh'))

describe('a refresh cookie with no usable value', () => {
  it.each([
    ['empty, next to a guessed unsuffixed __refresh', (sfx: string) => `__refresh_${sfx}=; __refresh=guessed-value`],
    ['empty', (sfx: string) => `__refresh_${sfx}=`],
    ['only spaces, percent-encoded', (sfx: string) => `__refresh_${sfx}=%20%20`],
    ['an empty quoted string', (sfx: string) => `__refresh_${sfx}=""`],
    ['a quoted run of spaces', (sfx: string) => `__refresh_${sfx}="   "`],
    ['empty twice (one tossed by a sibling subdomain)', (sfx: string) => `__refresh_${sfx}=; __refresh_${sfx}=%09`],
  ])('%s → 409 recovery_required (refresh_cookie_missing), and Clerk is never called', async (_, cookie) => {
    stack = await startStack()
    const response = await stack.request({ headers: { cookie: cookie(stack.clerk.cookieSuffix) } })
    expect(response.status).toBe(409)
    const { error } = await response.json()
    expect(error).toMatchObject({ code: 'recovery_required', reason: 'refresh_cookie_missing' })
    expect(error.message).toContain(`__refresh_${stack.clerk.cookieSuffix}`)
    expect(stack.clerk.requests()).toHaveLength(0)
    expect(stack.events).toMatchObject([{ status: 409, code: 'recovery_required', reason: 'refresh_cookie_missing' }])
  })

  it('an empty value beside the real cookie is skipped: the real one refreshes, in one call', async () => {
    stack = await startStack()
    const response = await stack.request({ headers: { cookie: `__refresh_${stack.clerk.cookieSuffix}=; ${stack.refreshCookie}` } })
    expect(response.status).toBe(200)
    expect(refreshCalls(stack)).toHaveLength(1)
    expect(stack.upstreamBodies.map((b) => b.refresh_token)).toEqual([stack.session.refreshToken])
  })
})
