import { describe, expect, it } from 'vitest'
import type { RefreshRecord } from '../helpers/app.js'
import { changes } from '../helpers/sampler.js'
import type { Tab } from './drivers/index.js'
import { counts, engines, sleep, state, useTabs } from './harness.js'

/** A retry scheduled for exactly `Retry-After` after the answer may reach the server a hair early on its clock. */
const SLACK_MS = 25

/** The requests that arrived after `refused` and before its `Retry-After` had passed: should be none. */
function tooEarly(requests: RefreshRecord[], refused: RefreshRecord, retryAfterMs: number): RefreshRecord[] {
  return requests.filter((r) => r !== refused && r.at >= refused.at && r.at < refused.at + retryAfterMs - SLACK_MS)
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !condition(); await sleep(20)) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`)
  }
}

const describeRequests = (requests: RefreshRecord[], t0: number) =>
  requests.map((r) => `${r.at - t0} ms ${r.status}${r.by === 'edge' ? ' (edge)' : ''}`).join(', ')

describe.each(engines)('[%s]', (name) => {
  const browser = useTabs(name)
  const { tabs } = browser
  const neverSignedOut = async (pages: Tab[]) => {
    for (const page of pages) expect((await changes(page)).map((c) => c.status)).not.toContain('signedOut')
  }

  it('429 with Retry-After: 3 for 3 s, two tabs, 10 s tokens: no request before Retry-After has passed, then one refresh per cycle', async () => {
    const pages = await tabs(2, { lifetimeSeconds: 10 })
    browser.app.requests.length = 0
    browser.app.rateLimit({ retryAfterSeconds: 3, forMs: 3_000, body: 'json' }) // from the next refresh on
    await until(() => browser.app.requests.some((r) => r.by === 'edge'), 10_000, 'the next refresh')
    const t0 = browser.app.requests.find((r) => r.by === 'edge')!.at
    await sleep(3_000 + 11_000) // the 429 window, then two cycles (10 s tokens are refreshed 5 s early)
    const requests = [...browser.app.requests]
    console.log(`[${name}] 429 Retry-After 3 s for 3 s: ${describeRequests(requests, t0)}`)

    for (const refused of requests.filter((r) => r.by === 'edge')) expect(tooEarly(requests, refused, 3_000)).toEqual([])
    expect(requests.filter((r) => r.at >= t0 && r.at < t0 + 3_000).length).toBeLessThanOrEqual(2) // ≤ 1 per Retry-After, all tabs
    const after = requests.filter((r) => r.at >= t0 + 3_000)
    expect(after.map((r) => r.status)).toEqual(after.map(() => 200))
    expect(after[0]!.at - (t0 + 3_000)).toBeLessThan(1_500) // the retry right after Retry-After
    // One refresh per cycle: each token refreshed once, about 5 s apart.
    expect(new Set(after.map((r) => r.token)).size).toBe(after.length)
    expect(after.length).toBeGreaterThanOrEqual(2)
    for (let i = 1; i < after.length; i++) expect(after[i]!.at - after[i - 1]!.at).toBeGreaterThan(3_500)
    // Retry-After ended before the token did: every tab kept a valid token throughout.
    for (const c of await counts(pages)) expect([c.expired, c.errors]).toEqual([0, 0])
    for (const page of pages) expect((await state(page)).status).toMatch(/active|refreshing/)
    await neverSignedOut(pages)
  })

  it('an edge 429 with an HTML body and Retry-After: 8, longer than the token has left: ≤ 1 request per 8 s, expired (never signed out), getToken() throws, then the session recovers', async () => {
    // getToken() waits at most 2 s, less than the Retry-After: it must throw rather than answer an expired token.
    const pages = await tabs(2, { lifetimeSeconds: 10, dataset: { getTokenTimeoutMs: '2000' } })
    browser.app.requests.length = 0
    browser.app.rateLimit({ retryAfterSeconds: 8, forMs: 8_000, body: 'html' })
    await until(() => browser.app.requests.some((r) => r.by === 'edge'), 10_000, 'the next refresh')
    const t0 = browser.app.requests.find((r) => r.by === 'edge')!.at
    // The token, refreshed 5 s before its expiry, expires 5 s into the 8 s.
    await Promise.all(
      pages.map((p) => p.waitFor(() => window.sessionKeeper!.getState().status === 'expired', undefined, { timeoutMs: 7_500 })),
    )
    const answers = await Promise.all(
      pages.map((p) =>
        p.evaluate(() =>
          window.sessionKeeper!.getToken().then(
            (token) => ({ token }),
            (e) => ({ name: e.name, code: e.code, cause: e.cause?.code }),
          ),
        ),
      ),
    )
    expect(answers).toEqual(pages.map(() => ({ name: 'TokenUnavailableError', code: 'token_unavailable', cause: 'refresh_rate_limited' })))
    expect(Date.now()).toBeLessThan(t0 + 8_000) // asked inside the window
    // After the window, every tab is back with a valid token.
    await Promise.all(
      pages.map((p) =>
        p.waitFor(() => window.sessionKeeper!.getState().status === 'active', undefined, {
          timeoutMs: Math.max(1_000, t0 + 12_000 - Date.now()),
        }),
      ),
    )
    await sleep(Math.max(0, t0 + 8_000 + 6_000 - Date.now())) // and one more cycle
    const requests = [...browser.app.requests]
    console.log(
      `[${name}] HTML 429 Retry-After 8 s for 8 s: ${describeRequests(requests, t0)}; getToken() in the window: ${JSON.stringify(answers[0])}`,
    )

    for (const refused of requests.filter((r) => r.by === 'edge')) expect(tooEarly(requests, refused, 8_000)).toEqual([])
    expect(requests.filter((r) => r.at >= t0 && r.at < t0 + 8_000)).toHaveLength(1) // ≤ 1 per 8 s, all tabs
    const after = requests.filter((r) => r.at >= t0 + 8_000)
    expect(after.map((r) => r.status)).toEqual(after.map(() => 200))
    expect(after[0]!.at - (t0 + 8_000)).toBeLessThan(1_500)
    expect(new Set(after.map((r) => r.token)).size).toBe(after.length)
    for (let i = 1; i < after.length; i++) expect(after[i]!.at - after[i - 1]!.at).toBeGreaterThan(3_500)
    for (const c of await counts(pages)) expect(c.expired).toBe(0) // it threw instead (counted as errors)
    for (const page of pages) expect((await state(page)).expiresAt!).toBeGreaterThan(Date.now())
    await neverSignedOut(pages)
  })
})
