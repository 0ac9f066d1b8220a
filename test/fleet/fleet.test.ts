// @vitest-environment node
/**
 * A fleet of proxies on one Redis: three instances in separate processes behind a round-robin
 * front, a real redis-server, and the emulator, all on 127.0.0.1. No mocks of Redis.
 */
import { createServer } from 'node:http'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { sleep } from '../helpers/time.js'
import { toNodeHandler } from '../../src/server/index.js'
import { createClerkEmulator, type EmulatedSession } from '../../src/testing/index.js'
import { startFleet, type Fleet } from '../helpers/fleet.js'
import { startRedis, type RedisServer } from '../helpers/redis.js'
import { close, listen } from '../helpers/servers.js'

const ORIGIN = 'http://app.fleet.test'

let redis: RedisServer
let fleet: Fleet | undefined
const clock = { offsetMs: 0 }
const clerk = createClerkEmulator({ now: () => Date.now() + clock.offsetMs, unexpiredTokens: 'accept' })
const emulator = createServer(toNodeHandler(clerk.handler, { maxBodyBytes: 1 << 20 }))
let apiUrl: string

beforeAll(async () => {
  redis = await startRedis()
  apiUrl = await listen(emulator)
}, 30_000)
afterAll(async () => {
  await redis?.stop()
  await close(emulator)
})
afterEach(async () => {
  await fleet?.close()
  fleet = undefined
  clerk.clearFaults()
  clerk.resetStats()
})

function start(options: Record<string, unknown> = {}) {
  return startFleet(3, {
    redisUrl: redis.url,
    secretKey: clerk.secretKey,
    publishableKey: clerk.publishableKey,
    apiUrl,
    origin: ORIGIN,
    rateLimit: false,
    upstreamBudget: false,
    storeSecret: `fleet-${Math.random()}`,
    ...options,
  })
}

/** A session whose first token has expired `ageMs − lifetime` ago. */
function session(ageMs = 62_000): EmulatedSession {
  clock.offsetMs = -ageMs
  const s = clerk.createSession({ origin: ORIGIN })
  clock.offsetMs = 0
  return s
}

function refresh(url: string, s: EmulatedSession, init: { signal?: AbortSignal } = {}) {
  return fetch(`${url}/api/session/refresh`, {
    method: 'POST',
    signal: init.signal,
    headers: { 'content-type': 'application/json', origin: ORIGIN, cookie: `__refresh_${clerk.cookieSuffix}=${s.refreshToken}` },
    body: JSON.stringify({ session_id: s.sessionId, expired_token: s.sessionToken }),
  })
}

describe('a fleet of three proxies on one Redis', () => {
  it('a retry after a lost answer, on another instance, gets the same token with one call to Clerk', async () => {
    fleet = await start()
    const [a, b, c] = fleet.instances
    const s = session()
    clerk.setFaults({ latencyMs: 300 })
    const lost = new AbortController()
    const first = refresh(a!.url, s, { signal: lost.signal }).catch(() => null)
    await sleep(100)
    lost.abort() // the browser lost the answer; instance a's call to Clerk goes on
    expect(await first).toBeNull()
    await expect.poll(() => a!.events.length, { timeout: 5_000 }).toBe(1)
    const retry = await refresh(b!.url, s)
    expect(retry.status).toBe(200)
    const { jwt, replayed } = await retry.json()
    expect(replayed).toBe(true)
    expect((await (await refresh(c!.url, s)).json()).jwt).toBe(jwt)
    expect(clerk.stats().refreshes).toBe(1)
    expect(clerk.stats().byCode).toEqual({})
  })

  it('20 identical concurrent requests spread over 3 instances make 1 call to Clerk', async () => {
    fleet = await start()
    const s = session()
    clerk.setFaults({ latencyMs: 300 })
    const answers = await Promise.all(Array.from({ length: 20 }, () => refresh(fleet!.url, s)))
    const tokens = await Promise.all(answers.map(async (r) => (await r.json()).jwt))
    expect(answers.map((r) => r.status)).toEqual(Array(20).fill(200))
    expect(new Set(tokens).size).toBe(1)
    expect(clerk.stats().refreshes).toBe(1)
    expect(clerk.requests().filter((r) => r.path.endsWith('/refresh'))).toHaveLength(1)
    expect(new Set(fleet.instances.map((i) => i.events.length > 0))).toEqual(new Set([true]))
  })

  it('killing the claiming instance mid-request still answers everyone, long before the token expires', async () => {
    fleet = await start({ timeoutMs: 2_000 }) // a claim lives 3 s
    const [claimant, ...others] = fleet.instances
    const s = session(10_000) // a fresh token: 50 s of life left
    clerk.setFaults({ latencyMs: 1_500 })
    const started = Date.now()
    const doomed = refresh(claimant!.url, s).catch(() => 'connection lost')
    await sleep(100) // the claimant holds the claim and waits on Clerk
    const waiting = others.flatMap((i) => [refresh(i.url, s), refresh(i.url, s)])
    await sleep(100)
    claimant!.kill()
    expect(await doomed).toBe('connection lost')
    const answers = await Promise.all(waiting)
    const retried = await refresh(fleet.url, s) // the dead instance's client tries again
    const elapsed = Date.now() - started
    expect([...answers, retried].map((r) => r.status)).toEqual([200, 200, 200, 200, 200])
    const tokens = new Set(await Promise.all([...answers, retried].map(async (r) => (await r.json()).jwt)))
    expect(tokens.size).toBe(1)
    expect(clerk.stats().refreshes).toBe(1) // the dead instance's call never reached processing
    expect(elapsed).toBeLessThan(10_000)
  })

  it('a Redis restart mid-run loses no session and signs nobody out', async () => {
    fleet = await start({ storeTimeoutMs: 100 })
    // Ten sessions, each refreshing its own chain of tokens through the front, across the restart.
    const chains = Array.from({ length: 10 }, () => {
      const s = session(10_000)
      return { session: s, token: s.sessionToken }
    })
    const statuses: number[] = []
    const deadline = Date.now() + 5_000
    // Each chain runs on its own, so that some requests are in flight whenever Redis goes away.
    const runner = Promise.all(
      chains.map(async (chain) => {
        while (Date.now() < deadline) {
          const response = await refresh(fleet!.url, { ...chain.session, sessionToken: chain.token })
          statuses.push(response.status)
          if (response.ok) chain.token = (await response.json()).jwt
          else console.log('refresh across the Redis restart failed:', response.status, await response.text())
          await sleep(50)
        }
      }),
    )
    await sleep(1_500)
    await redis.stop()
    await sleep(1_500)
    await redis.start()
    await runner
    const degraded = fleet.events().filter((e) => e.store === 'degraded').length
    console.log(
      `redis restart: ${statuses.length} refreshes of 10 sessions, statuses ${JSON.stringify(countBy(statuses))}, ${degraded} answered with this process's memory standing in`,
    )
    expect(statuses.length).toBeGreaterThan(50)
    expect(statuses.filter((status) => status !== 200)).toEqual([])
    expect(degraded).toBeGreaterThan(0)
    // Redis is back: a retry on another instance is replayed from it again, once both instances'
    // clients have reconnected (a call slower than storeTimeoutMs meanwhile is answered from
    // memory, and a failed one keeps the instance on memory for a second). Asked until then,
    // for 5 s at most, each time with a new session.
    const backAt = Date.now()
    let replayed: { replayed?: boolean } = {}
    for (const until = backAt + 5_000; replayed.replayed !== true && Date.now() < until; await sleep(200)) {
      const s = session()
      await refresh(fleet.instances[0]!.url, s)
      replayed = await (await refresh(fleet.instances[1]!.url, s)).json()
    }
    console.log(`redis restart: replayed across instances again ${Date.now() - backAt} ms after the run`)
    expect(replayed.replayed).toBe(true)
  })

  it('the global upstream budget holds under a burst across instances, with a spread Retry-After', async () => {
    fleet = await start({ upstreamBudget: { max: 10, windowMs: 10_000 } })
    const sessions = Array.from({ length: 40 }, () => session())
    const answers = await Promise.all(sessions.map((s) => refresh(fleet!.url, s)))
    const ok = answers.filter((r) => r.status === 200).length
    const limited = answers.filter((r) => r.status === 429)
    const retryAfter = new Set(limited.map((r) => r.headers.get('retry-after')))
    console.log(
      `budget 10 per 10 s, burst of 40 over 3 instances: ${ok} refreshed, ${limited.length} told to retry after ${[...retryAfter].sort().join(', ')} s`,
    )
    expect(ok).toBe(10)
    expect(limited).toHaveLength(30)
    expect(clerk.stats().refreshes).toBe(10)
    expect(retryAfter.size).toBeGreaterThan(3) // spread, not all back at once
    expect((await limited[0]!.json()).error).toMatchObject({ code: 'rate_limited', reason: 'upstream_budget' })
  })
})

function countBy(values: number[]): Record<number, number> {
  const out: Record<number, number> = {}
  for (const v of values) out[v] = (out[v] ?? 0) + 1
  return out
}
