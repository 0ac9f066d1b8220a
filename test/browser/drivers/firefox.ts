import puppeteer, { type Browser, type BrowserContext, type Page } from 'puppeteer-core'
import { requireProgram } from '../../helpers/browsers.js'
import { backByScript, pageExpression, pollUntil } from './common.js'
import type { Engine, Placement, Session, SessionOptions, Tab } from './types.js'

/**
 * Debian's firefox-esr through puppeteer-core over WebDriver BiDi (no geckodriver, nothing
 * downloaded). One browser per engine; a session is a BiDi user context (its own cookie jar,
 * storage, channel and locks). Tabs opened `back` are real background tabs: Firefox hides them.
 * Cannot crash a tab (no BiDi command kills a content process): `crash()` closes it.
 *
 * What an ESR's BiDi implements differs by release: Firefox 140 ESR answers "unknown command" to
 * `emulation.setNetworkConditions` (puppeteer's `setOfflineMode`) and to
 * `emulation.setScreenOrientationOverride` (sent with every `setViewport`). The first is probed
 * at launch (`can.offline`: the tests then make the app's server drop requests, as in WebKit);
 * the second is tolerated, since `browsingContext.setViewport`, sent with it, does the resizing.
 */
export async function launchFirefoxEngine(): Promise<Engine> {
  const browser: Browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: requireProgram('firefox'),
    headless: true,
    // A profile as a fresh install has it, minus what would reach the network at start-up.
    extraPrefsFirefox: { 'browser.shell.checkDefaultBrowser': false, 'app.update.enabled': false, 'network.dns.disableIPv6': true },
  })
  const version = (await browser.version()).replace(/^firefox\//i, 'Firefox ')
  const sessions = new Set<Session>()
  const engine: Engine = {
    name: 'firefox',
    version,
    can: { crash: false, offline: await supportsOffline(browser), anyViewport: true },
    async newSession(options) {
      const session = await newFirefoxSession(engine, await browser.createBrowserContext(), options)
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
      await browser.close()
    },
  }
  return engine
}

/** A BiDi command this Firefox does not implement (the error puppeteer passes on). */
const isUnknownCommand = (error: unknown) => error instanceof Error && /unknown command/i.test(error.message)

/** Whether `setOfflineMode` works here: tried once, on a page of a context of its own. */
async function supportsOffline(browser: Browser): Promise<boolean> {
  const context = await browser.createBrowserContext()
  try {
    const page = await context.newPage()
    await page.setOfflineMode(false)
    return true
  } catch (error) {
    if (isUnknownCommand(error)) return false
    throw error
  } finally {
    await context.close().catch(() => {})
  }
}

/**
 * `page.setViewport`, tolerating an unimplemented screen-orientation override (see above). puppeteer
 * sends both commands together and rejects on the first error, before `browsingContext.setViewport`
 * has been answered: the resize is then waited for here (`innerWidth`), or the page would be read
 * at its old width (1200 instead of 390 px, once in three runs).
 */
async function setViewport(page: Page, viewport: { width: number; height: number }): Promise<void> {
  const tolerated = await page.setViewport(viewport).then(
    () => false,
    (error: unknown) => {
      if (!isUnknownCommand(error)) throw error
      return true
    },
  )
  if (tolerated)
    await pollUntil(() => page.evaluate((width) => innerWidth === width, viewport.width), 5_000, `innerWidth ${viewport.width}`)
}

async function newFirefoxSession(engine: Engine, context: BrowserContext, options: SessionOptions = {}): Promise<Session> {
  const tabs: FirefoxTab[] = []
  let offline = false
  let closed = false
  const session: Session = {
    engine,
    get tabs() {
      return tabs.filter((t) => !t.closed)
    },
    async open(url, placement = 'back') {
      const actual: Placement = tabs.length === 0 ? 'front' : placement
      const page =
        actual === 'window'
          ? await context.newPage({ type: 'window' })
          : await context.newPage({ type: 'tab', background: actual === 'back' })
      if (options.viewport) await setViewport(page, options.viewport)
      if (offline) await page.setOfflineMode(true)
      const tab = new FirefoxTab(page, tabs.length, actual)
      tabs.push(tab)
      await tab.goto(url)
      return tab
    },
    async clearCookies(name) {
      const doomed = (await context.cookies()).filter((c) => name.test(c.name))
      if (doomed.length) await context.deleteCookie(...doomed)
    },
    async setOffline(value) {
      offline = value
      await Promise.all(session.tabs.map((t) => (t as FirefoxTab).page.setOfflineMode(value)))
    },
    async close() {
      if (closed) return
      closed = true
      await context.close().catch(() => {})
    },
  }
  return session
}

class FirefoxTab implements Tab {
  #closed = false

  constructor(
    readonly page: Page,
    readonly index: number,
    readonly placement: Placement,
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
    await this.page.screenshot({ path: path as `${string}.png`, fullPage: true })
  }

  async setViewport(width: number, height: number): Promise<number> {
    await setViewport(this.page, { width, height })
    return this.evaluate(() => innerWidth)
  }

  async crash(): Promise<'closed'> {
    await this.close()
    return 'closed'
  }

  back(): Promise<void> {
    return backByScript(this)
  }

  async close(): Promise<void> {
    this.#closed = true
    await this.page.close()
  }
}
