import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { startApp, type App } from '../helpers/app.js'
import { launchChromium } from '../helpers/chromium.js'

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

/**
 * Every 50 ms, each tab asks getToken() and checks the answer's exp against the clock: the count
 * of expired answers must stay 0 whatever happens to the other tabs.
 */
const SAMPLER = `
  window.__samples = 0; window.__expired = 0;
  setInterval(async () => {
    if (!window.sessionKeeper) return
    try {
      const token = await window.sessionKeeper.getToken()
      if (!token) return
      window.__samples++
      const exp = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).exp
      if (exp * 1000 <= Date.now()) window.__expired++
    } catch (e) { window.__errors = (window.__errors || 0) + 1 }
  }, 50)
`

async function openTabs(count: number, lifetimeSeconds = 6, emulatorLatencyMs = 20): Promise<Page[]> {
  app = await startApp({ tokenLifetimeSeconds: lifetimeSeconds })
  app.clerk.setFaults({ latencyMs: emulatorLatencyMs })
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
const expiredSeen = (pages: Page[]) =>
  Promise.all(pages.map((p) => p.evaluate(() => (window as unknown as { __expired: number }).__expired)))

describe('in real Chromium', () => {
  it('5 tabs make as many refresh requests as 1 tab: one per cycle', async () => {
    const runMs = 16_000
    await openTabs(1)
    app.requests.length = 0
    await sleep(runMs)
    const single = app.requests.length
    await context.close()
    await app.close()

    const pages = await openTabs(5)
    app.requests.length = 0
    await sleep(runMs)
    const five = app.requests.length
    const distinct = new Set(app.requests.map((r) => r.token)).size
    console.log(`refresh requests over ${runMs / 1000} s of 6 s tokens: 1 tab ${single}, 5 tabs ${five}`)
    expect(five).toBeGreaterThanOrEqual(4)
    expect(distinct).toBe(five) // never two requests for the same token: one refresher per cycle
    expect(Math.abs(five - single)).toBeLessThanOrEqual(1) // same cadence (window edges may cut one)
    // All tabs hold the same token (polled: a read may straddle a refresh's few-ms propagation).
    await expect.poll(async () => new Set(await Promise.all(pages.map(async (p) => (await state(p)).token))).size).toBe(1)
    expect(await expiredSeen(pages)).toEqual([0, 0, 0, 0, 0])
    // Nothing in storage, and the refresh token stays out of reach of page scripts.
    for (const page of pages) {
      const exposed = await page.evaluate(() => ({ stored: localStorage.length + sessionStorage.length, cookies: document.cookie }))
      expect(exposed.stored).toBe(0)
      expect(exposed.cookies).not.toMatch(/__refresh/)
    }
  })

  it('closing the refreshing tab mid-refresh leaves no tab with an expired token', async () => {
    const pages = await openTabs(4, 6)
    app.clerk.setFaults({ latencyMs: 1_500 })
    const refresher = await new Promise<Page>((resolve) => {
      for (const page of pages) page.on('request', (r) => r.url().endsWith('/api/session/refresh') && resolve(page))
    })
    await sleep(200) // its request is in flight
    await refresher.close()
    const survivors = pages.filter((p) => p !== refresher)
    app.clerk.setFaults({ latencyMs: 20 })
    await sleep(8_000)
    for (const page of survivors) expect((await state(page)).status).toMatch(/active|refreshing/)
    expect(await expiredSeen(survivors)).toEqual([0, 0, 0])
    expect(app.clerk.stats().refreshes).toBeGreaterThanOrEqual(2)
  })

  it('a 401 signs every tab out', async () => {
    const pages = await openTabs(3, 4)
    const sessionId = (await state(pages[0])).sessionId!
    app.clerk.revokeSession(sessionId)
    await Promise.all(pages.map((p) => p.waitForFunction(() => window.sessionKeeper!.getState().status === 'signedOut', null, { timeout: 10_000 })))
    for (const page of pages) {
      const s = await page.evaluate(() => {
        const { token, error } = window.sessionKeeper!.getState()
        return { token, code: error?.code }
      })
      expect(s).toEqual({ token: null, code: 'refresh_rejected' })
    }
  })

  it('recovers after going offline past expiry', async () => {
    const pages = await openTabs(2, 4)
    await context.setOffline(true)
    await pages[0].waitForFunction(() => window.sessionKeeper!.getState().status === 'expired', null, { timeout: 10_000 })
    const during = app.requests.length
    await sleep(1_000)
    expect(app.requests.length).toBe(during) // no retries burnt while offline
    expect((await state(pages[1])).online).toBe(false)
    await context.setOffline(false)
    await Promise.all(pages.map((p) => p.waitForFunction(() => window.sessionKeeper!.getState().status === 'active', null, { timeout: 5_000 })))
    const s = await state(pages[0])
    expect(s.expiresAt!).toBeGreaterThan(Date.now())
    expect(await expiredSeen(pages)).toEqual([0, 0])
  })
})

declare global {
  interface Window {
    sessionKeeper?: import('../../src/index.js').SessionKeeper
  }
}
