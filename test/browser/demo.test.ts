import { mkdirSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { createServer, type ViteDevServer } from 'vite'
import { launchChromium } from '../helpers/chromium.js'

let browser: Browser
let vite: ViteDevServer
let url: string
let context: BrowserContext
const consoleErrors: string[] = []

beforeAll(async () => {
  vite = await createServer({ configFile: 'vite.config.ts', server: { port: 0, host: '127.0.0.1', strictPort: false }, logLevel: 'silent' })
  await vite.listen()
  url = vite.resolvedUrls!.local[0]!
  browser = await launchChromium()
  context = await browser.newContext({ viewport: { width: 1200, height: 900 } })
})
afterAll(async () => {
  await browser?.close()
  await vite?.close()
})

async function open(): Promise<Page> {
  const page = await context.newPage()
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()))
  page.on('pageerror', (e) => consoleErrors.push(e.message))
  await page.goto(url)
  return page
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const logEntries = (page: Page) =>
  page.$$eval('#log li', (items) =>
    items.map((li) => ({ kind: li.className, text: li.textContent ?? '', at: Number(li.dataset.at), iat: Number(li.dataset.iat) })),
  )

describe('the demo (npm run demo) in real Chromium', () => {
  it.each([
    'accept',
    'refuse',
  ])('loads without console errors, signs in, and shows one refresh per lifetime across three tabs (Clerk %ss early refreshes)', async (policy) => {
    consoleErrors.length = 0
    const first = await open()
    await first.evaluate(() =>
      fetch('/demo-api/lifetime', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"seconds":6}' }),
    )
    await first.click(`#early button[data-policy="${policy}"]`)
    await first.click('#sign-in')
    await first.waitForSelector('#status-pill.active')
    const others = [await open(), await open()]
    for (const page of others) await page.waitForSelector('#status-pill.active')
    const windowStart = Date.now()
    const statsBefore = await first.evaluate(async () => (await fetch('/demo-api/stats')).json())
    await sleep(15_000)
    const statsAfter = await first.evaluate(async () => (await fetch('/demo-api/stats')).json())
    const windowEnd = Date.now()
    // Cycles that began and ended inside the window, as the third tab's shared log shows them.
    const entries = (await logEntries(others[1]!)).filter((e) => e.at >= windowStart && e.at <= windowEnd)
    const refreshes = entries.filter((e) => e.kind === 'refresh')
    expect(refreshes.length).toBeGreaterThanOrEqual(policy === 'accept' ? 4 : 2)
    expect(new Set(refreshes.map((e) => e.iat)).size).toBe(refreshes.length) // one refresh per token
    expect(statsAfter.refreshes - statsBefore.refreshes).toBeGreaterThanOrEqual(refreshes.length)
    expect(statsAfter.refreshes - statsBefore.refreshes).toBeLessThanOrEqual(refreshes.length + 1) // a refresh at a window edge
    for (const refresh of refreshes.slice(0, -1)) {
      const received = entries.filter((e) => e.kind === 'received' && e.iat === refresh.iat)
      expect(received).toHaveLength(2) // the two other tabs, without a request
      expect(received.every((e) => /no request/.test(e.text) && /\+\d+ ms after the refresh/.test(e.text))).toBe(true)
    }
    // Chromium logs the proxy's 503 (refused before expiry) as a failed resource; nothing else.
    expect(consoleErrors.filter((e) => !/status of 503/.test(e))).toEqual([])

    mkdirSync('test-results', { recursive: true })
    await others[0]!.screenshot({ path: `test-results/demo-${policy}-tab-2.png`, fullPage: true })
    await first.screenshot({ path: `test-results/demo-${policy}-tab-1.png`, fullPage: true })
    // A phone: nothing wider than the screen.
    await first.setViewportSize({ width: 390, height: 844 })
    await sleep(200)
    expect(await first.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390)
    await first.screenshot({ path: `test-results/demo-${policy}-phone.png`, fullPage: true })
    await first.setViewportSize({ width: 1200, height: 900 })

    expect(await first.evaluate(() => document.getElementById('claims')!.textContent)).not.toContain('lifetimeMs')
    await first.click('#revoke')
    for (const page of [first, ...others]) await page.waitForSelector('#status-pill.signedOut', { timeout: 10_000 })
    expect(await first.isDisabled('#revoke')).toBe(true) // nothing to revoke while signed out
    const after = await logEntries(first)
    expect(after.filter((e) => e.kind === 'signedOut' && /refresh_rejected/.test(e.text)).length).toBeGreaterThanOrEqual(3)
    // Chromium logs the proxy's 401 to the revoked session as a failed resource; nothing else.
    expect(consoleErrors.filter((e) => !/status of (401|503)/.test(e))).toEqual([])
    for (const page of [first, ...others]) await page.close()
  })
})
