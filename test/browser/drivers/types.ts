/**
 * The few things the real-browser tests do with a browser, the same way in each engine. Each
 * engine's file says how it does them; where an engine cannot, `Engine.can` says so and the
 * test does the closest real equivalent.
 */
export type EngineName = 'chromium' | 'firefox' | 'webkit'

export interface Engine {
  readonly name: EngineName
  /** As the browser reports it, e.g. "Firefox 153.8.0esr". */
  readonly version: string
  readonly can: {
    /** Kill a tab's renderer (the OS-level crash); otherwise `Tab.crash()` closes the tab. */
    readonly crash: boolean
    /** Take the browser offline (`navigator.onLine` false, requests fail at once). */
    readonly offline: boolean
    /** Resize the viewport to any width (MiniBrowser's window has a minimum width). */
    readonly anyViewport: boolean
  }
  /**
   * A fresh profile: its tabs share cookies, storage, BroadcastChannel and Web Locks, and
   * nothing of another session's.
   */
  newSession(options?: SessionOptions): Promise<Session>
  close(): Promise<void>
}

export interface SessionOptions {
  /** Viewport of new tabs. */
  viewport?: { width: number; height: number }
}

/**
 * Where a new tab goes. `front`: the first tab of the session's window, visible and focused.
 * `back`: a tab behind it in the same window, hidden as the engine hides background tabs (the
 * realistic case of many open tabs). `window`: a window of its own, visible.
 */
export type Placement = 'front' | 'back' | 'window'

export interface Session {
  readonly engine: Engine
  /** Opens a tab at `url` and waits for its load. The session's first tab is always `front`. */
  open(url: string, placement?: Placement): Promise<Tab>
  /** Tabs opened and not closed, in order. */
  readonly tabs: readonly Tab[]
  /** Removes the cookies whose name matches (the browser's own store, HttpOnly included). */
  clearCookies(name: RegExp): Promise<void>
  /** Browser-level offline for every tab; throws where `engine.can.offline` is false. */
  setOffline(offline: boolean): Promise<void>
  close(): Promise<void>
}

export interface Tab {
  /** Opening order within the session. */
  readonly index: number
  readonly placement: Placement
  /** Navigates and waits for the load (a redirect is followed). */
  goto(url: string): Promise<void>
  /**
   * Runs `fn(arg)` in the page and answers its (awaited, JSON-serialisable) result. `fn` is sent
   * as source text: it must not close over anything of the test.
   */
  evaluate<R, A = undefined>(fn: (arg: A) => R | Promise<R>, arg?: A): Promise<Awaited<R>>
  /** Polls `fn(arg)` in the page until it is truthy; throws after `timeoutMs`. */
  waitFor<A = undefined>(fn: (arg: A) => unknown, arg?: A, options?: { timeoutMs?: number; what?: string }): Promise<void>
  /**
   * Goes back one entry in the tab's history, as the page's `history.back()` does (the
   * back/forward cache applies); answers once it has started, or, where the driver's own
   * command waits, once the page is back.
   */
  back(): Promise<void>
  /** Saves a PNG of the page (the whole page where the engine can, else the viewport). */
  screenshot(path: string): Promise<void>
  /** Resizes the viewport; answers the width the page then has (`innerWidth`). */
  setViewport(width: number, height: number): Promise<number>
  /** Kills the tab's renderer where the engine can (`engine.can.crash`), else closes the tab. */
  crash(): Promise<'crashed' | 'closed'>
  close(): Promise<void>
  readonly closed: boolean
}
