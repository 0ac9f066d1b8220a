import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { startApp, type App } from '../helpers/app.js'
import { launchChromium } from '../helpers/chromium.js'
import { SAMPLER, samplerCounts, type SamplerCounts } from '../helpers/sampler.js'

let browser: Browser
let app: App
let context: BrowserContext

beforeAll(async () => {
  browser = await launchChromium()
})
afterAll(async () => {
  await browser?.close()
})
afterEach(async () => {
  await context?.close()
  await app?.close()
})

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
type Policy = 'accept' | 'refuse'

async function openTabs(count: number, { lifetimeSeconds = 6, latencyMs = 20, policy = 'accept' as Policy } = {}): Promise<Page[]> {
  app = await startApp({ tokenLifetimeSeconds: lifetimeSeconds, unexpiredTokens: policy })
  app.clerk.setFaults({ latencyMs })
  context = await browser.newContext()
  await context.addInitScript(SAMPLER)
  const first = await context.newPage()
  await first.goto(`${app.origin}/login`)
  const pages = [first]
  for (let i = 1; i < count; i++) {
    const page = await context.newPage()
    await page.goto(app.origin)
    pages.push(page)
  }
  for (const page of pages) await page.waitForFunction(() => window.sessionKeeper?.getState().status === 'active')
  return pages
}

const state = (page: Page) => page.evaluate(() => window.sessionKeeper!.getState())
const counts = (pages: Page[]) => Promise.all(pages.map(samplerCounts))

/** Every tab asked for tokens all along (samples > n), never got an expired one, never an error. */
function expectSound(all: SamplerCounts[], minSamples: number): void {
  for (const c of all) {
    expect(c.samples).toBeGreaterThan(minSamples)
    expect(c.expired).toBe(0)
    expect(c.errors).toBe(0)
  }
}

describe.each(['accept', 'refuse'] as const)('in real Chromium, with a Clerk that %ss unexpired tokens', (policy) => {
  it('5 tabs cost Clerk as many refreshes as 1 tab: one per cycle', async () => {
    const runMs = 14_000
    await openTabs(1, { policy })
    let before = app.clerk.stats().refreshes
    app.requests.length = 0
    await sleep(runMs)
    const single = app.clerk.stats().refreshes - before
    await context.close()
    await app.close()

    const pages = await openTabs(5, { policy })
    before = app.clerk.stats().refreshes
    app.requests.length = 0
    await sleep(runMs)
    const five = app.clerk.stats().refreshes - before
    const accepted = app.requests.filter((r) => r.status === 200)
    const refusedEarly = app.requests.filter((r) => r.code === 'not_yet_expired').length
    console.log(
      `[${policy}] Clerk refreshes over ${runMs / 1000} s of 6 s tokens: 1 tab ${single}, 5 tabs ${five}; proxy requests ${app.requests.length}, refused early ${refusedEarly}`,
    )
    expect(five).toBeGreaterThanOrEqual(2)
    expect(Math.abs(five - single)).toBeLessThanOrEqual(1) // same cadence (window edges may cut one)
    expect(new Set(accepted.map((r) => r.token)).size).toBe(accepted.length) // one refresher per cycle
    expect(app.requests.length - accepted.length).toBeLessThanOrEqual(1) // at most the first cycle's refusal
    await expect.poll(async () => new Set(await Promise.all(pages.map(async (p) => (await state(p)).token))).size).toBe(1)
    expectSound(await counts(pages), 50)
    // Nothing in storage, and the refresh token stays out of reach of page scripts.
    for (const page of pages) {
      const exposed = await page.evaluate(() => ({ stored: localStorage.length + sessionStorage.length, cookies: document.cookie }))
      expect(exposed.stored).toBe(0)
      expect(exposed.cookies).not.toMatch(/__refresh/)
    }
  })

  it('closing the refreshing tab mid-refresh leaves no tab with an expired token', async () => {
    const pages = await openTabs(4, { policy })
    app.clerk.setFaults({ latencyMs: 1_500 })
    const refresher = await new Promise<Page>((resolve) => {
      for (const page of pages) page.on('request', (r) => r.url().endsWith('/api/session/refresh') && resolve(page))
    })
    await sleep(200) // its request is in flight
    await refresher.close()
    const survivors = pages.filter((p) => p !== refresher)
    app.clerk.setFaults({ latencyMs: 20 })
    await sleep(9_000)
    for (const page of survivors) expect((await state(page)).status).toMatch(/active|refreshing/)
    expectSound(await counts(survivors), 20)
    // Refreshes before expiry every 3 s, or at expiry every 6 s when Clerk refuses early ones.
    expect(app.clerk.stats().refreshes).toBeGreaterThanOrEqual(policy === 'accept' ? 2 : 1)
  })
})

describe('in real Chromium', () => {
  it('refreshing at expiry (Clerk refuses early): 5 tabs, 6 cycles, one request per cycle after the first, 0 expired answers', async () => {
    const pages = await openTabs(5, { lifetimeSeconds: 4, latencyMs: 100, policy: 'refuse' })
    const before = app.clerk.stats().refreshes
    await sleep(6 * 4_000 + 1_500)
    const refreshes = app.clerk.stats().refreshes - before
    const refused = app.requests.filter((r) => r.code === 'not_yet_expired').length
    const all = await counts(pages)
    const waits = all.flatMap((c) => c.waits).sort((a, b) => a - b)
    const around = waits.filter((w) => w > 5) // the calls that had to wait for the refresh at expiry
    const pct = (list: number[], p: number) => list[Math.min(list.length - 1, Math.floor(list.length * p))] ?? 0
    console.log(
      `[refuse] 6 cycles of 4 s tokens, 5 tabs, 100 ms upstream: ${refreshes} refreshes, ${refused} refused early, ${app.requests.length} proxy requests; getToken wait p50/p99 all ${pct(waits, 0.5).toFixed(1)}/${pct(waits, 0.99).toFixed(1)} ms (n=${waits.length}), of the ${around.length} that waited: ${pct(around, 0.5).toFixed(0)}/${pct(around, 0.99).toFixed(0)} ms`,
    )
    expect(refused).toBe(1)
    expect(refreshes).toBeGreaterThanOrEqual(5)
    expect(refreshes).toBeLessThanOrEqual(7)
    expect(app.requests.length).toBe(refreshes + refused)
    expectSound(all, 100)
    // Bounded by the width of the clock-offset interval (≈ 1 s: iat is truncated to seconds) plus
    // the request; see the README ("Refreshing at expiry").
    expect(pct(waits, 0.99)).toBeLessThan(2_000)
    for (const page of pages) expect((await state(page)).status).toMatch(/active|refreshing/)
  })

  it('a 409 in one tab puts every tab in recovery_required with no request loop; a new session cookie ends it', async () => {
    const pages = await openTabs(3, { lifetimeSeconds: 5 })
    const first = await state(pages[0]!)
    // The refresh cookie is lost (another app on the domain, a browser clean-up …): the proxy answers 409.
    await context.clearCookies({ name: /^__refresh/ })
    await Promise.all(
      pages.map((p) =>
        p.waitForFunction(() => window.sessionKeeper!.getState().error?.code === 'recovery_required', null, { timeout: 10_000 }),
      ),
    )
    for (const page of pages) expect((await state(page)).status).toMatch(/active|expired/)
    await sleep(6_000) // past the token's expiry: still exactly one request, from one tab
    expect(app.requests.filter((r) => r.status === 409)).toHaveLength(1)
    const events = await Promise.all(pages.map((p) => p.evaluate(() => (window as unknown as { __recoveries: number }).__recoveries)))
    expect(events).toEqual([1, 1, 1])
    // Clerk's handshake, as a reload through its middleware would do it: new cookies.
    const other = await context.newPage()
    await other.goto(`${app.origin}/login?user=user_again`)
    await Promise.all(
      pages.map((p) =>
        p.waitForFunction(
          (sid) => {
            const s = window.sessionKeeper!.getState()
            return s.status === 'active' && s.error === null && s.sessionId !== sid
          },
          first.sessionId,
          { timeout: 5_000 },
        ),
      ),
    )
  })

  it('a sign-in without a page load (cookies set by a fetch in one tab) reaches every tab within a second', async () => {
    app = await startApp({ tokenLifetimeSeconds: 60, unexpiredTokens: 'accept' })
    context = await browser.newContext()
    const pages = [await context.newPage(), await context.newPage()]
    for (const page of pages) await page.goto(app.origin)
    for (const page of pages) await page.waitForFunction(() => window.sessionKeeper?.getState().status === 'signedOut')
    const loads = [0, 0]
    pages.forEach((page, i) => {
      page.on('load', () => {
        loads[i]!++
      })
    })
    const started = Date.now()
    await pages[0]!.evaluate(() => fetch('/login', { credentials: 'same-origin' })) // Set-Cookie, no navigation
    await Promise.all(
      pages.map((p) => p.waitForFunction(() => window.sessionKeeper!.getState().status === 'active', null, { timeout: 1_500 })),
    )
    const elapsed = Date.now() - started
    console.log(`sign-in by cookie reached both tabs in ${elapsed} ms`)
    expect(elapsed).toBeLessThan(1_500)
    expect(loads).toEqual([0, 0])
  })

  it('a 401 session_ended signs every tab out', async () => {
    const pages = await openTabs(3, { lifetimeSeconds: 4 })
    const sessionId = (await state(pages[0]!)).sessionId!
    app.clerk.revokeSession(sessionId)
    await Promise.all(
      pages.map((p) => p.waitForFunction(() => window.sessionKeeper!.getState().status === 'signedOut', null, { timeout: 10_000 })),
    )
    for (const page of pages) {
      const s = await page.evaluate(() => {
        const { token, error } = window.sessionKeeper!.getState()
        return { token, code: error?.code }
      })
      expect(s).toEqual({ token: null, code: 'refresh_rejected' })
    }
  })

  it('recovers after going offline past expiry', async () => {
    const pages = await openTabs(2, { lifetimeSeconds: 4 })
    await context.setOffline(true)
    await pages[0]!.waitForFunction(() => window.sessionKeeper!.getState().status === 'expired', null, { timeout: 10_000 })
    const during = app.requests.length
    await sleep(1_000)
    expect(app.requests.length).toBe(during) // no retries burnt while offline
    expect((await state(pages[1]!)).online).toBe(false)
    await context.setOffline(false)
    await Promise.all(
      pages.map((p) => p.waitForFunction(() => window.sessionKeeper!.getState().status === 'active', null, { timeout: 5_000 })),
    )
    const s = await state(pages[0]!)
    expect(s.expiresAt!).toBeGreaterThan(Date.now())
    const all = await counts(pages)
    for (const c of all) {
      expect(c.samples).toBeGreaterThan(20)
      expect(c.expired).toBe(0) // offline, getToken throws (counted as errors) rather than answer an expired token
    }
  })
})

declare global {
  interface Window {
    sessionKeeper?: import('../../src/index.js').SessionKeeper
  }
}
