import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser } from 'playwright-core'
import { startApp, type App } from '../helpers/app.js'
import { launchChromium } from '../helpers/chromium.js'

let browser: Browser
let app: App
beforeAll(async () => {
  browser = await launchChromium()
  app = await startApp({ tokenLifetimeSeconds: 4 }, { dataset: { cookieName: '__session' } })
})
afterAll(async () => {
  await browser?.close()
  await app?.close()
})

describe('the <script> build on a plain HTML page', () => {
  it('auto-starts from data-endpoint, exposes window.sessionKeeper and dispatches session-keeper:change', async () => {
    const context = await browser.newContext()
    await context.addInitScript(() => {
      const seen: string[] = []
      ;(window as unknown as { __events: string[] }).__events = seen
      addEventListener('session-keeper:change', (e) => seen.push((e as CustomEvent).detail.status))
    })
    const page = await context.newPage()
    const errors: string[] = []
    page.on('pageerror', (e) => errors.push(e.message))
    await page.goto(`${app.origin}/login`)
    await page.waitForFunction(() => (window as unknown as { __events: string[] }).__events.includes('active'))
    expect(
      await page.evaluate(
        () => typeof (window as unknown as { SessionKeeper: { createSessionKeeper: unknown } }).SessionKeeper.createSessionKeeper,
      ),
    ).toBe('function')
    await page.waitForFunction(() => (window as unknown as { __events: string[] }).__events.includes('refreshing'), null, {
      timeout: 8_000,
    })
    const token = await page.evaluate(() =>
      (window as unknown as { sessionKeeper: { getToken(): Promise<string> } }).sessionKeeper.getToken(),
    )
    expect(token.split('.')).toHaveLength(3)
    await expect.poll(() => app.requests.length, { timeout: 5_000 }).toBeGreaterThanOrEqual(1) // the refresh reached the proxy
    expect(errors).toEqual([])
    await context.close()
  })

  it('data-on-recovery="reload" reloads the page when the proxy answers recovery_required', async () => {
    const recoveryApp = await startApp({ tokenLifetimeSeconds: 4, unexpiredTokens: 'accept' }, { dataset: { onRecovery: 'reload' } })
    const context = await browser.newContext()
    const page = await context.newPage()
    await page.goto(`${recoveryApp.origin}/login`)
    await page.waitForFunction(
      () => (window as unknown as { sessionKeeper?: { getState(): { status: string } } }).sessionKeeper?.getState().status === 'active',
    )
    await context.clearCookies({ name: /^__refresh/ }) // the next refresh gets 409
    const reloaded = page.waitForEvent('load', { timeout: 10_000 })
    await reloaded
    expect(recoveryApp.requests.filter((r) => r.status === 409)).toHaveLength(1)
    await context.close()
    await recoveryApp.close()
  })

  it('a listener added after the script tag, as in the README, receives the first state', async () => {
    // The README's snippet, verbatim, right after the <script> tag.
    const snippet = `<script>
  addEventListener('session-keeper:change', (e) => console.log(e.detail.status))
</script>`
    const firstApp = await startApp({ tokenLifetimeSeconds: 60, unexpiredTokens: 'accept' }, { after: snippet })
    const context = await browser.newContext()
    const page = await context.newPage()
    const logged: string[] = []
    page.on('console', (m) => logged.push(m.text()))
    const started = Date.now()
    await page.goto(`${firstApp.origin}/login`)
    await expect.poll(() => logged, { timeout: 3_000 }).toContain('active')
    expect(Date.now() - started).toBeLessThan(3_000) // not at the next refresh, 45 s away
    await context.close()
    await firstApp.close()
  })

  it('without data-endpoint only defines window.SessionKeeper', async () => {
    const page = await browser.newPage()
    await page.setContent('<!doctype html><p>plain</p>')
    await page.addScriptTag({ url: `${app.origin}/session-keeper.iife.js` })
    const globals = await page.evaluate(() => ({
      api: Object.keys((window as unknown as { SessionKeeper: object }).SessionKeeper).sort(),
      keeper: 'sessionKeeper' in window,
    }))
    expect(globals.keeper).toBe(false)
    expect(globals.api).toEqual(expect.arrayContaining(['createSessionKeeper', 'RefreshError', 'TokenError', 'decodeSessionToken']))
    await page.close()
  })
})
