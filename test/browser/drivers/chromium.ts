import { execFileSync } from 'node:child_process'
import type { BrowserContext, Page } from 'playwright-core'
import { requireProgram } from '../../helpers/browsers.js'
import { startChromium, type RunningChromium } from '../../helpers/chromium.js'
import { backByScript, pageExpression, pollUntil } from './common.js'
import type { Engine, Placement, Session, SessionOptions, Tab } from './types.js'

/**
 * Chromium through playwright-core over CDP, one Chromium process per session (its default
 * profile is the session's). Background tabs are created with CDP's `Target.createTarget`
 * (`background: true`): Chromium hides them as it hides any tab behind the selected one.
 */
export async function launchChromiumEngine(): Promise<Engine> {
  const binary = requireProgram('chromium')
  const version = execFileSync(binary, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    .replace(/ built on.*/s, '')
    .trim()
  const sessions = new Set<Session>()
  const engine: Engine = {
    name: 'chromium',
    version,
    can: { crash: true, offline: true, anyViewport: true },
    async newSession(options) {
      const session = await newChromiumSession(engine, options)
      sessions.add(session)
      const close = session.close.bind(session)
      session.close = async () => {
        sessions.delete(session)
        await close()
      }
      return session
    },
    async close() {
      await Promise.all([...sessions].map((s) => s.close()))
    },
  }
  return engine
}

async function newChromiumSession(engine: Engine, options: SessionOptions = {}): Promise<Session> {
  const running: RunningChromium = await startChromium({ windowSize: options.viewport })
  const context: BrowserContext = running.browser.contexts()[0]!
  const cdp = await running.browser.newBrowserCDPSession()
  const tabs: ChromiumTab[] = []
  let count = 0
  let closed = false

  async function newPage(placement: Placement): Promise<Page> {
    if (tabs.length === 0) return context.pages()[0] ?? context.newPage()
    const created = context.waitForEvent('page')
    await cdp.send('Target.createTarget', {
      url: 'about:blank',
      newWindow: placement === 'window',
      background: placement === 'back',
    })
    return created
  }

  const session: Session = {
    engine,
    get tabs() {
      return tabs.filter((t) => !t.closed)
    },
    async open(url, placement = 'back') {
      const actual: Placement = tabs.length === 0 ? 'front' : placement
      const page = await newPage(actual)
      if (options.viewport) await page.setViewportSize(options.viewport)
      const tab = new ChromiumTab(page, count++, actual, context)
      tabs.push(tab)
      // The first tab of a headless Chromium is not focused until activated; the others open behind it.
      if (actual === 'front') await page.bringToFront()
      await tab.goto(url)
      return tab
    },
    async clearCookies(name) {
      await context.clearCookies({ name })
    },
    async setOffline(offline) {
      await context.setOffline(offline)
    },
    async close() {
      if (closed) return
      closed = true
      await running.stop()
    },
  }
  return session
}

class ChromiumTab implements Tab {
  #closed = false

  constructor(
    readonly page: Page,
    readonly index: number,
    readonly placement: Placement,
    readonly context: BrowserContext,
  ) {
    page.on('close', () => {
      this.#closed = true
    })
  }

  get closed(): boolean {
    return this.#closed
  }

  async goto(url: string): Promise<void> {
    await this.page.goto(url, { waitUntil: 'load', timeout: 60_000 }) // a starved machine loads background tabs slowly
  }

  evaluate<R, A = undefined>(fn: (arg: A) => R | Promise<R>, arg?: A): Promise<Awaited<R>> {
    return this.page.evaluate(pageExpression(fn as (arg: never) => unknown, arg)) as Promise<Awaited<R>>
  }

  waitFor<A = undefined>(fn: (arg: A) => unknown, arg?: A, options: { timeoutMs?: number; what?: string } = {}): Promise<void> {
    return pollUntil(() => this.evaluate(fn, arg), options.timeoutMs ?? 10_000, options.what ?? fn.toString().slice(0, 120))
  }

  async screenshot(path: string): Promise<void> {
    await this.page.screenshot({ path, fullPage: true })
  }

  async setViewport(width: number, height: number): Promise<number> {
    await this.page.setViewportSize({ width, height })
    return this.evaluate(() => innerWidth)
  }

  async crash(): Promise<'crashed'> {
    const cdp = await this.context.newCDPSession(this.page)
    cdp.send('Page.crash').catch(() => {}) // the renderer dies without answering; the browser frees its Web Lock
    this.#closed = true
    return 'crashed'
  }

  back(): Promise<void> {
    return backByScript(this)
  }

  async close(): Promise<void> {
    this.#closed = true
    await this.page.close()
  }
}
