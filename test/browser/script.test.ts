import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startApp, type App } from '../helpers/app.js'
import { RECORDER } from '../helpers/sampler.js'
import { engines, useEngine } from './harness.js'

let app: App
beforeAll(async () => {
  app = await startApp({ tokenLifetimeSeconds: 4 }, { dataset: { cookieName: '__session' }, head: RECORDER })
})
afterAll(async () => {
  await app?.close()
})

type Recorded = { __changes: { status: string }[]; __logs: string[]; __pageErrors: string[] }

describe.each(engines)('[%s] the <script> build on a plain HTML page', (name) => {
  const browser = useEngine(name)

  it('auto-starts from data-endpoint, exposes window.sessionKeeper and dispatches session-keeper:change', async () => {
    const session = await browser.engine.newSession()
    const before = app.requests.length
    try {
      const page = await session.open(`${app.origin}/login`, 'front')
      await page.waitFor(() => (window as unknown as Recorded).__changes.some((c) => c.status === 'active'))
      expect(
        await page.evaluate(
          () => typeof (window as unknown as { SessionKeeper: { createSessionKeeper: unknown } }).SessionKeeper.createSessionKeeper,
        ),
      ).toBe('function')
      await page.waitFor(() => (window as unknown as Recorded).__changes.some((c) => c.status === 'refreshing'), undefined, {
        timeoutMs: 8_000,
      })
      const token = await page.evaluate(() => window.sessionKeeper!.getToken())
      expect(token!.split('.')).toHaveLength(3)
      await expect.poll(() => app.requests.length, { timeout: 5_000 }).toBeGreaterThan(before) // the refresh reached the proxy
      expect(await page.evaluate(() => (window as unknown as Recorded).__pageErrors)).toEqual([])
    } finally {
      await session.close()
    }
  })

  it('data-on-recovery="reload" reloads the page after a 409 recovery_required, once the token has expired past Clerk\'s 5 s of skew (a reload before would run no handshake)', async () => {
    const recoveryApp = await startApp({ tokenLifetimeSeconds: 4, unexpiredTokens: 'accept' }, { dataset: { onRecovery: 'reload' } })
    const session = await browser.engine.newSession()
    try {
      const page = await session.open(`${recoveryApp.origin}/login`, 'front')
      await page.waitFor(() => window.sessionKeeper?.getState().status === 'active')
      const loadedAt = await page.evaluate(() => performance.timeOrigin)
      const served = recoveryApp.pageLoads.length
      await session.clearCookies(/^__refresh/) // the next refresh gets 409
      await page.waitFor(
        () => {
          const s = window.sessionKeeper?.getState()
          return s?.error?.code === 'recovery_required' ? s.expiresAt : null
        },
        undefined,
        { timeoutMs: 8_000, what: 'the recovery' },
      )
      const expiresAt = await page.evaluate(() => window.sessionKeeper!.getState().expiresAt!)
      await page.waitFor((before) => performance.timeOrigin !== before && document.readyState === 'complete', loadedAt, {
        timeoutMs: 15_000,
        what: 'a reload',
      })
      // One 409, then a single reload once Clerk's middleware would run its handshake (here none
      // plants a new refresh cookie on the way, so the reloaded page meets a 409 of its own in turn).
      const reloadedAt = recoveryApp.pageLoads[served]!
      expect(reloadedAt).toBeDefined()
      expect(reloadedAt).toBeGreaterThanOrEqual(expiresAt + 5_000)
      expect(recoveryApp.pageLoads.filter((at) => at < expiresAt + 5_000).length).toBe(served)
      expect(recoveryApp.requests.filter((r) => r.status === 409 && r.at < reloadedAt)).toHaveLength(1)
    } finally {
      await session.close()
      await recoveryApp.close()
    }
  })

  it('a listener added after the script tag, as in the README, receives the first state', async () => {
    // The README's snippet, verbatim, right after the <script> tag.
    const snippet = `<script>
  addEventListener('session-keeper:change', (e) => console.log(e.detail.status))
</script>`
    const firstApp = await startApp({ tokenLifetimeSeconds: 60, unexpiredTokens: 'accept' }, { after: snippet, head: RECORDER })
    const session = await browser.engine.newSession()
    try {
      const started = Date.now()
      const page = await session.open(`${firstApp.origin}/login`, 'front')
      await page.waitFor(() => (window as unknown as Recorded).__logs.includes('active'), undefined, { timeoutMs: 3_000 })
      expect(Date.now() - started).toBeLessThan(3_000) // not at the next refresh, 45 s away
    } finally {
      await session.close()
      await firstApp.close()
    }
  })

  it('without data-endpoint only defines window.SessionKeeper', async () => {
    const session = await browser.engine.newSession()
    try {
      const page = await session.open(`${app.origin}/junk`, 'front')
      await page.evaluate(
        (src) =>
          new Promise((resolve, reject) => {
            const script = document.createElement('script')
            script.src = src
            script.onload = resolve
            script.onerror = reject
            document.head.append(script)
          }).then(() => null),
        `${app.origin}/session-keeper.iife.js`,
      )
      const globals = await page.evaluate(() => ({
        api: Object.keys((window as unknown as { SessionKeeper: object }).SessionKeeper).sort(),
        keeper: 'sessionKeeper' in window,
      }))
      expect(globals.keeper).toBe(false)
      expect(globals.api).toEqual(expect.arrayContaining(['createSessionKeeper', 'RefreshError', 'TokenError', 'decodeSessionToken']))
    } finally {
      await session.close()
    }
  })
})
