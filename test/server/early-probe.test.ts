// @vitest-environment node
/**
 * Issue 16: with `earlyRefresh: 'auto'`, what the proxy has not learned yet about Clerk's policy
 * for unexpired tokens is asked by ONE request per process; the others wait for its answer.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { EmulatedSession } from '../../src/testing/index.js'
import { startStack, type Stack } from '../helpers/servers.js'

let stack: Stack | undefined
afterEach(async () => {
  await stack?.close()
  stack = undefined
})

const refreshCalls = (s: Stack) => s.clerk.requests().filter((r) => r.path.endsWith('/refresh'))

/** A refresh of `session`'s current token with its own refresh cookie (or `cookie`). */
function refresh(s: Stack, session: EmulatedSession, cookie = session.refreshToken) {
  return s.request({
    headers: { cookie: `__refresh_${s.clerk.cookieSuffix}=${cookie}` },
    body: { session_id: session.sessionId, expired_token: session.sessionToken },
  })
}

async function burst(s: Stack, sessions: EmulatedSession[]) {
  const answers = await Promise.all(sessions.map((session) => refresh(s, session)))
  return Promise.all(answers.map(async (r) => ({ status: r.status, body: await r.json(), retryAfter: r.headers.get('retry-after') })))
}

/**
 * The proxy's `fetch`, recording when each refresh call to Clerk started and ended (Infinity while
 * it has not); refresh calls
 * of the sessions in `delayMs` are held that long before they leave.
 */
function timedFetch() {
  const calls: { sessionId: string; start: number; end: number }[] = []
  const delayMs = new Map<string, number>()
  const fetchLike = async (input: Request | string | URL, init?: RequestInit) => {
    const url = input instanceof Request ? input.url : String(input)
    const sessionId = /\/sessions\/([^/]+)\/refresh/.exec(url)?.[1]
    if (!sessionId) return fetch(input, init)
    const call = { sessionId, start: Date.now(), end: Number.POSITIVE_INFINITY }
    calls.push(call)
    await new Promise((resolve) => setTimeout(resolve, delayMs.get(sessionId) ?? 0))
    try {
      return await fetch(input, init)
    } finally {
      call.end = Date.now()
    }
  }
  return { fetch: fetchLike, calls, delayMs }
}

/** `count` sessions whose tokens were issued 10 s ago: 50 s of life left. */
const unexpired = (s: Stack, count: number) => Array.from({ length: count }, () => s.sessionAged(10_000))

describe('learning whether Clerk refreshes unexpired tokens: one probe per process', () => {
  it('30 sessions starting together against a Clerk that refuses: 1 call to Clerk, 30 × 503 not_yet_expired', async () => {
    stack = await startStack({}, { unexpiredTokens: 'refuse' })
    stack.clerk.setFaults({ latencyMs: 150 })
    const answers = await burst(stack, unexpired(stack, 30))
    expect(refreshCalls(stack)).toHaveLength(1)
    expect(stack.clerk.stats().byCode).toEqual({ session_refresh_session_token_ineligible: 1 })
    expect(answers.map((a) => [a.status, a.body.error?.code])).toEqual(Array(30).fill([503, 'not_yet_expired']))
    // Each answer is timed on its own token's expiry.
    for (const a of answers) expect(Number(a.retryAfter)).toBeGreaterThanOrEqual(49)
  })

  it('30 sessions starting together against a Clerk that accepts: all 30 refreshed, one call each', async () => {
    stack = await startStack({}, { unexpiredTokens: 'accept' })
    stack.clerk.setFaults({ latencyMs: 150 })
    const sessions = unexpired(stack, 30)
    const answers = await burst(stack, sessions)
    expect(answers.map((a) => a.status)).toEqual(Array(30).fill(200))
    expect(refreshCalls(stack)).toHaveLength(30)
    expect(stack.clerk.stats().refreshes).toBe(30)
  })

  it('the others wait for the probe: none reaches Clerk before its answer is in, then all go at once', async () => {
    const upstream = timedFetch()
    stack = await startStack({ fetch: upstream.fetch }, { unexpiredTokens: 'accept' })
    stack.clerk.setFaults({ latencyMs: 100 })
    expect((await burst(stack, unexpired(stack, 10))).map((a) => a.status)).toEqual(Array(10).fill(200))
    const [first, ...others] = [...upstream.calls].sort((a, b) => a.start - b.start)
    expect(others).toHaveLength(9)
    for (const call of others) expect(call.start).toBeGreaterThanOrEqual(first!.end)
    // Clerk accepted: the nine then go together, not one after another.
    expect(Math.max(...others.map((c) => c.start))).toBeLessThan(Math.min(...others.map((c) => c.end)))
  })

  it('a probe that teaches nothing (its own refresh cookie is unknown) hands over to the next request, still one at a time', async () => {
    const upstream = timedFetch()
    stack = await startStack({ fetch: upstream.fetch }, { unexpiredTokens: 'refuse' })
    expect((await stack.request()).status).toBe(200) // an expired token: keys fetched, nothing learned
    const [guessed, ...sessions] = unexpired(stack, 11)
    upstream.delayMs.set(guessed!.sessionId, 200)
    const doomed = refresh(stack, guessed!, 'guessed-cookie')
    await expect.poll(() => upstream.calls.some((c) => c.sessionId === guessed!.sessionId)).toBe(true) // the probe is out
    const answers = await burst(stack, sessions)
    expect((await doomed).status).toBe(409)
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(503))
    const unexpiredCalls = refreshCalls(stack).slice(1)
    expect(unexpiredCalls.map((r) => r.code)).toEqual(['refresh_token_not_found', 'session_refresh_session_token_ineligible'])
  })

  it('a probe that finds Clerk failing answers the requests waiting on it the same, without calling Clerk', async () => {
    stack = await startStack({}, { unexpiredTokens: 'accept' })
    stack.clerk.setFaults({ latencyMs: 150, failNext: 1, failStatus: 500 })
    const answers = await burst(stack, unexpired(stack, 10))
    expect(answers.map((a) => [a.status, a.body.error?.code])).toEqual(Array(10).fill([503, 'upstream_unavailable']))
    expect(refreshCalls(stack)).toHaveLength(1)
    // Clerk is back: the next request probes again and, Clerk accepting, everyone refreshes.
    expect((await burst(stack, unexpired(stack, 5))).map((a) => a.status)).toEqual(Array(5).fill(200))
  })

  it('expired tokens never wait for a probe: they are not what it asks about', async () => {
    const upstream = timedFetch()
    stack = await startStack({ fetch: upstream.fetch }, { unexpiredTokens: 'refuse' })
    const [fresh] = unexpired(stack, 1)
    upstream.delayMs.set(fresh!.sessionId, 1_000)
    const probe = refresh(stack, fresh!)
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect((await stack.request()).status).toBe(200)
    const expiredDone = Date.now()
    expect((await probe).status).toBe(503)
    const probeCall = upstream.calls.find((c) => c.sessionId === fresh!.sessionId)!
    expect(expiredDone).toBeLessThan(probeCall.end) // answered while the probe was still at Clerk
  })
})
