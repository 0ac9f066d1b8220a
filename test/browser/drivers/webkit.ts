import { type ChildProcess, spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { requireProgram } from '../../helpers/browsers.js'
import { freePort, pageExpression, pollUntil, Serial, sleep } from './common.js'
import type { Engine, Placement, Session, SessionOptions, Tab } from './types.js'
import { WebDriverClient } from './webdriver.js'
import { startXvfb, stopChild, type XServer } from './xvfb.js'

/**
 * WebKitGTK's MiniBrowser through WebKitWebDriver (W3C WebDriver Classic, plain `fetch`), on an
 * Xvfb display this engine starts on a free display number and stops by its pid. WebKitWebDriver
 * runs one session per process, so a session is a driver process with its MiniBrowser; its tabs
 * are windows from `POST /window/new`. A `back` tab is a MiniBrowser tab behind the first one:
 * WebKit hides it (an unselected GTK notebook page is unmapped). What WebDriver Classic cannot do:
 * go offline (the tests make the app's server drop requests instead), crash a tab (closed
 * instead), and a window narrower than MiniBrowser's toolbar (447 px).
 */
export async function launchWebKitEngine(): Promise<Engine> {
  const driverPath = requireProgram('webkitDriver')
  const browserPath = requireProgram('miniBrowser')
  const x: XServer = await startXvfb()
  const sessions = new Set<Session>()
  const engine = {
    name: 'webkit' as const,
    version: 'WebKitGTK',
    can: { crash: false, offline: false, anyViewport: false },
    async newSession(options?: SessionOptions): Promise<Session> {
      const session = await newWebKitSession(engine, { driverPath, browserPath, display: x.display }, options)
      engine.version = `WebKitGTK ${session.browserVersion} (MiniBrowser)`
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
      await x.stop()
    },
  }
  // The version comes with the first session's capabilities.
  await (await engine.newSession()).close()
  return engine
}

interface Paths {
  driverPath: string
  browserPath: string
  display: string
}

async function newWebKitSession(engine: Engine, paths: Paths, options: SessionOptions = {}): Promise<Session & { browserVersion: string }> {
  const port = await freePort()
  const driver: ChildProcess = spawn(paths.driverPath, [`--port=${port}`, '--host=127.0.0.1'], {
    env: { ...process.env, DISPLAY: paths.display, NO_AT_BRIDGE: '1', GDK_BACKEND: 'x11' },
    stdio: ['ignore', 'ignore', 'ignore'],
  })
  const client = new WebDriverClient(`http://127.0.0.1:${port}`)
  let created: { sessionId: string; capabilities: { browserVersion: string } }
  try {
    await client.ready()
    created = await client.command('POST', '/session', {
      capabilities: {
        alwaysMatch: {
          'webkitgtk:browserOptions': { binary: paths.browserPath, args: ['--automation'] },
          pageLoadStrategy: 'normal',
          timeouts: { script: 60_000, pageLoad: 30_000 },
        },
      },
    })
  } catch (error) {
    await stopChild(driver)
    throw error
  }
  const prefix = `/session/${created.sessionId}`
  const serial = new Serial()
  let current = await client.command<string>('GET', `${prefix}/window`)
  const first = current
  /** Runs `task` with `handle` as the current window, one command sequence at a time. */
  const inWindow = <T>(handle: string, task: () => Promise<T>) =>
    serial.run(async () => {
      if (current !== handle) {
        await client.command('POST', `${prefix}/window`, { handle })
        current = handle
      }
      return task()
    })
  const command = <T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown) =>
    client.command<T>(method, `${prefix}${path}`, body)
  const tabs: WebKitTab[] = []
  let closed = false

  const session = {
    engine,
    browserVersion: created.capabilities.browserVersion,
    get tabs() {
      return tabs.filter((t) => !t.closed)
    },
    async open(url: string, placement: Placement = 'back'): Promise<Tab> {
      const actual: Placement = tabs.length === 0 ? 'front' : placement
      const handle =
        tabs.length === 0
          ? first
          : (await serial.run(() => command<{ handle: string }>('POST', '/window/new', { type: actual === 'window' ? 'window' : 'tab' })))
              .handle
      const tab = new WebKitTab(handle, tabs.length, actual, inWindow, command, (h) => {
        if (current === h) current = ''
      })
      tabs.push(tab)
      if (options.viewport && actual !== 'back') await tab.setViewport(options.viewport.width, options.viewport.height)
      await tab.goto(url)
      return tab
    },
    async clearCookies(name: RegExp) {
      const tab = session.tabs[0]
      if (!tab) return
      await inWindow(tab.handle, async () => {
        const cookies = await command<{ name: string }[]>('GET', '/cookie')
        for (const cookie of cookies) if (name.test(cookie.name)) await command('DELETE', `/cookie/${encodeURIComponent(cookie.name)}`)
      })
    },
    async setOffline(): Promise<void> {
      throw new Error('WebKit (WebDriver Classic) has no network emulation: make the server drop the requests instead')
    },
    async close() {
      if (closed) return
      closed = true
      await serial.run(() => command('DELETE', '')).catch(() => {})
      await stopChild(driver)
    },
  }
  return session
}

type InWindow = <T>(handle: string, task: () => Promise<T>) => Promise<T>
type Command = <T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown) => Promise<T>

class WebKitTab implements Tab {
  #closed = false

  constructor(
    readonly handle: string,
    readonly index: number,
    readonly placement: Placement,
    private readonly inWindow: InWindow,
    private readonly command: Command,
    private readonly onClosed: (handle: string) => void,
  ) {}

  get closed(): boolean {
    return this.#closed
  }

  async goto(url: string): Promise<void> {
    await this.inWindow(this.handle, () => this.command('POST', '/url', { url }))
    // The load event has fired for the document `POST /url` waited for; a redirect's target too.
    await this.waitFor(() => document.readyState === 'complete', undefined, { timeoutMs: 30_000, what: `load of ${url}` })
  }

  async evaluate<R, A = undefined>(fn: (arg: A) => R | Promise<R>, arg?: A): Promise<Awaited<R>> {
    const script = `const done = arguments[arguments.length - 1];
      Promise.resolve().then(() => ${pageExpression(fn as (arg: never) => unknown, arg)}).then(
        (value) => done({ ok: true, value: value === undefined ? null : value }),
        (error) => done({ ok: false, error: String((error && error.stack) || error) }))`
    const answer = await this.inWindow(this.handle, () =>
      this.command<{ ok: boolean; value: Awaited<R>; error: string }>('POST', '/execute/async', { script, args: [] }),
    )
    if (!answer.ok) throw new Error(`evaluate failed in WebKit: ${answer.error}`)
    return answer.value
  }

  waitFor<A = undefined>(fn: (arg: A) => unknown, arg?: A, options: { timeoutMs?: number; what?: string } = {}): Promise<void> {
    return pollUntil(() => this.evaluate(fn, arg), options.timeoutMs ?? 10_000, options.what ?? fn.toString().slice(0, 120))
  }

  /** WebDriver's screenshot is of the viewport: the window is made as tall as the page for it. */
  async screenshot(path: string): Promise<void> {
    const size = await this.evaluate(() => ({ width: innerWidth, height: innerHeight, page: document.documentElement.scrollHeight }))
    const tall = size.page > size.height
    if (tall) await this.setViewport(size.width, Math.min(size.page, 2_000))
    const base64 = await this.inWindow(this.handle, () => this.command<string>('GET', '/screenshot'))
    writeFileSync(path, Buffer.from(base64, 'base64'))
    if (tall) await this.setViewport(size.width, size.height)
  }

  async setViewport(width: number, height: number): Promise<number> {
    // The window includes MiniBrowser's toolbar: size it so that the page gets `height`.
    const chrome = await this.evaluate(() => outerHeight - innerHeight)
    await this.inWindow(this.handle, () => this.command('POST', '/window/rect', { width, height: height + Math.max(0, chrome) }))
    await sleep(100)
    return this.evaluate(() => innerWidth)
  }

  async crash(): Promise<'closed'> {
    await this.close()
    return 'closed'
  }

  /**
   * WebDriver's Back, which answers once the page is back. Not `history.back()` from a script: the
   * next script sent may start in the page being left, which WebKit keeps in its back/forward
   * cache, and then never answers (seen in CI: a 60 s hang, the script timeout).
   */
  async back(): Promise<void> {
    await this.inWindow(this.handle, () => this.command('POST', '/back', {}))
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.inWindow(this.handle, async () => {
      await this.command('DELETE', '/window')
      this.onClosed(this.handle)
    })
  }
}
