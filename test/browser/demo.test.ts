import { mkdirSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createServer, type Plugin, type ViteDevServer } from 'vite'
import { RECORDER } from '../helpers/sampler.js'
import type { Session, Tab } from './drivers/index.js'
import { engines, sleep, useEngine } from './harness.js'

/** Every answer of the dev server with a status ≥ 400 (the demo's own requests and its assets). */
const failures: string[] = []

/**
 * Watches the demo from the server side, identically in every engine: the recorder runs first in
 * each page (errors, `console.error`), and every failed response is noted.
 */
const watch: Plugin = {
  name: 'test-watch',
  enforce: 'pre',
  configureServer(server) {
    server.middlewares.use((req, res, next) => {
      const path = req.url // before a mounted middleware strips its prefix
      res.on('finish', () => {
        if (res.statusCode >= 400) failures.push(`${res.statusCode} ${path}`)
      })
      next()
    })
  },
  transformIndexHtml: () => [{ tag: 'script', children: RECORDER, injectTo: 'head-prepend' }],
}

const click = (tab: Tab, selector: string) =>
  tab.evaluate((s) => {
    ;(document.querySelector(s) as HTMLElement).click()
  }, selector)
const waitForSelector = (tab: Tab, selector: string, timeoutMs = 10_000) =>
  tab.waitFor((s) => document.querySelector(s) !== null, selector, { timeoutMs, what: selector })
async function clickUntil(tab: Tab, selector: string, done: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await click(tab, selector)
    try {
      return await waitForSelector(tab, done, 5_000)
    } catch (error) {
      if (attempt === 3) throw error
    }
  }
}
const logEntries = (tab: Tab) =>
  tab.evaluate(() =>
    [...document.querySelectorAll<HTMLElement>('#log li')].map((li) => ({
      kind: li.className,
      text: li.textContent ?? '',
      at: Number(li.dataset.at),
      iat: Number(li.dataset.iat),
    })),
  )
const pageErrors = (tab: Tab) => tab.evaluate(() => (window as unknown as { __pageErrors: string[] }).__pageErrors)

describe.each(engines)('[%s] the demo (npm run demo)', (name) => {
  const browser = useEngine(name)
  // A demo server per engine: its proxy learns what Clerk does with early refreshes and keeps it.
  let vite: ViteDevServer
  let url: string
  beforeAll(async () => {
    vite = await createServer({
      configFile: 'vite.config.ts',
      plugins: [watch],
      // No file watching, no HMR and no dependency discovery: nothing reloads the tabs in the middle
      // of a measurement (a source file saved meanwhile, a dependency optimised late).
      server: { port: 0, host: '127.0.0.1', strictPort: false, watch: null, hmr: false },
      optimizeDeps: { noDiscovery: true, include: [] },
      logLevel: 'silent',
    })
    await vite.listen()
    url = vite.resolvedUrls!.local[0]!
  })
  afterAll(async () => {
    await vite?.close()
  })

  it.each([
    'accept',
    'refuse',
  ])('loads without errors, signs in, and shows one refresh per lifetime across three tabs, two of them hidden (Clerk %ss early refreshes)', async (policy) => {
    failures.length = 0
    const session: Session = await browser.engine.newSession({ viewport: { width: 1200, height: 900 } })
    try {
      const first = await session.open(url, 'front')
      await first.evaluate(() =>
        fetch('/demo-api/lifetime', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"seconds":6}' }).then(
          () => null,
        ),
      )
      // The button shows the policy once the demo's server has it (clicked again if Vite reloaded the page meanwhile).
      await clickUntil(first, `#early button[data-policy="${policy}"]`, `#early button.on[data-policy="${policy}"]`)
      await clickUntil(first, '#sign-in', '#status-pill.active')
      const others = [await session.open(url, 'back'), await session.open(url, 'back')]
      for (const page of others) await waitForSelector(page, '#status-pill.active')
      const windowStart = Date.now()
      const stats = () => first.evaluate(async () => (await fetch('/demo-api/stats')).json() as Promise<{ refreshes: number }>)
      const statsBefore = await stats()
      await sleep(15_000)
      const statsAfter = await stats()
      const windowEnd = Date.now()
      // Cycles that began and ended inside the window, as the third tab's shared log shows them.
      const entries = (await logEntries(others[1]!)).filter((e) => e.at >= windowStart && e.at <= windowEnd)
      const refreshes = entries.filter((e) => e.kind === 'refresh')
      const shown = entries.map((e) => `${e.at - windowStart} ms ${e.kind}`).join(', ')
      expect(refreshes.length, `the log, from the window's start: ${shown}`).toBeGreaterThanOrEqual(policy === 'accept' ? 4 : 2)
      expect(new Set(refreshes.map((e) => e.iat)).size).toBe(refreshes.length) // one refresh per token
      expect(statsAfter.refreshes - statsBefore.refreshes).toBeGreaterThanOrEqual(refreshes.length)
      expect(statsAfter.refreshes - statsBefore.refreshes).toBeLessThanOrEqual(refreshes.length + 1) // a refresh at a window edge
      // A hidden tab's reception may be logged a moment after the window (its timers are throttled):
      // look for them in the whole log, a second later.
      await sleep(1_000)
      const later = await logEntries(others[1]!)
      for (const refresh of refreshes.slice(0, -1)) {
        const received = later.filter((e) => e.kind === 'received' && e.iat === refresh.iat)
        expect(received).toHaveLength(2) // the two other tabs, without a request
        expect(received.every((e) => /no request/.test(e.text) && /\+\d+ ms after the refresh/.test(e.text))).toBe(true)
      }
      // No page error in any tab; nothing failed on the server but the proxy's 503 (refused before expiry).
      for (const page of [first, ...others]) expect(await pageErrors(page)).toEqual([])
      expect(failures.filter((f) => !/^503 \/api\/session\/refresh/.test(f))).toEqual([])

      mkdirSync('test-results', { recursive: true })
      await first.screenshot(`test-results/demo-${name}-${policy}-tab-1.png`)
      // A phone: nothing wider than the screen. MiniBrowser's window cannot be narrower than
      // its toolbar (447 px): WebKit is checked at the narrowest width it gets.
      const width = await first.setViewport(390, 844)
      if (browser.engine.can.anyViewport) expect(width).toBe(390)
      await sleep(200)
      expect(await first.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(width)
      await first.screenshot(`test-results/demo-${name}-${policy}-phone.png`)
      // The timeline: a lane per tab, its marks in words, and no wider than the phone.
      const timeline = await first.evaluate(() => {
        const host = document.getElementById('timeline')!
        const svg = host.querySelector('svg')!
        return {
          lanes: host.querySelectorAll('.lane-label').length,
          requests: host.querySelectorAll('circle.request[aria-label]').length,
          handovers: host.querySelectorAll('rect.received[tabindex="0"]').length,
          width: svg.getBoundingClientRect().width,
          hostWidth: host.getBoundingClientRect().width,
        }
      })
      expect(timeline.lanes).toBe(3)
      expect(timeline.requests).toBeGreaterThanOrEqual(2)
      expect(timeline.handovers).toBeGreaterThanOrEqual(2)
      expect(timeline.width).toBeLessThanOrEqual(timeline.hostWidth + 1)
      await first.setViewport(1200, 900)

      expect(await first.evaluate(() => document.getElementById('claims')!.textContent)).not.toContain('lifetimeMs')
      await click(first, '#revoke')
      for (const page of [first, ...others]) await waitForSelector(page, '#status-pill.signedOut')
      expect(await first.evaluate(() => (document.getElementById('revoke') as HTMLButtonElement).disabled)).toBe(true) // nothing to revoke while signed out
      const after = await logEntries(first)
      expect(after.filter((e) => e.kind === 'signedOut' && /refresh_rejected/.test(e.text)).length).toBeGreaterThanOrEqual(3)
      // The proxy's 401 to the revoked session is the only new failure.
      for (const page of [first, ...others]) expect(await pageErrors(page)).toEqual([])
      expect(failures.filter((f) => !/^(401|503) \/api\/session\/refresh/.test(f))).toEqual([])
    } finally {
      await session.close()
    }
  })
})
