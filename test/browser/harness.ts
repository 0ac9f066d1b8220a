import { afterAll, afterEach, beforeAll, expect } from 'vitest'
import { startApp, type App } from '../helpers/app.js'
import type { RefreshHandlerOptions } from '../../src/server/index.js'
import type { ClerkEmulatorOptions } from '../../src/testing/index.js'
import { RECORDER, SAMPLER, samplerCounts, type SamplerCounts } from '../helpers/sampler.js'
import { launchEngine, selectedEngines, type Engine, type EngineName, type Session, type Tab } from './drivers/index.js'

/** The engines every scenario runs in (all three unless `ENGINES` narrows them). */
export const engines = selectedEngines()

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** One browser of `name` for the enclosing `describe`, launched before its tests, closed after. */
export function useEngine(name: EngineName): { readonly engine: Engine } {
  const holder = {} as { engine: Engine }
  beforeAll(async () => {
    holder.engine = await launchEngine(name)
    console.log(`[${name}] ${holder.engine.version}`)
  }, 60_000)
  afterAll(async () => {
    await holder.engine?.close()
  })
  return holder
}

export type Policy = 'accept' | 'refuse'

export interface TabsOptions {
  lifetimeSeconds?: number
  latencyMs?: number
  policy?: Policy
  /** `data-*` options of the script tag. */
  dataset?: Record<string, string>
  emulator?: ClerkEmulatorOptions
  /** Options of the proxy (`createRefreshHandler`), e.g. `holdMs`. */
  proxy?: Partial<RefreshHandlerOptions>
}

/**
 * The app, and `count` tabs of one session: the first signs in (`/login`) and stays in front,
 * the others open behind it, hidden as the engine hides background tabs. Every page runs the
 * sampler and the recorder. Resolves once every tab is `active`.
 */
export async function openTabs(
  engine: Engine,
  count: number,
  { lifetimeSeconds = 6, latencyMs = 20, policy = 'accept', dataset, emulator, proxy }: TabsOptions = {},
): Promise<{ app: App; session: Session; tabs: Tab[] }> {
  const app = await startApp(
    { tokenLifetimeSeconds: lifetimeSeconds, unexpiredTokens: policy, ...emulator },
    { head: SAMPLER + RECORDER, dataset },
    proxy,
  )
  app.clerk.setFaults({ latencyMs })
  const session = await engine.newSession()
  const tabs = [await session.open(`${app.origin}/login`, 'front')]
  for (let i = 1; i < count; i++) tabs.push(await session.open(app.origin, 'back'))
  await Promise.all(
    tabs.map((tab) => tab.waitFor(() => window.sessionKeeper?.getState().status === 'active', undefined, { timeoutMs: 15_000 })),
  )
  return { app, session, tabs }
}

export const state = (tab: Tab) => tab.evaluate(() => window.sessionKeeper!.getState())
/** The sampler's counts in each tab, with whether the tab is hidden now. */
export const counts = (tabs: Tab[]): Promise<TabCounts[]> =>
  Promise.all(tabs.map(async (tab) => ({ ...(await samplerCounts(tab)), hidden: await tab.evaluate(() => document.hidden) })))
export type TabCounts = SamplerCounts & { hidden: boolean }
export const visibility = (tabs: Tab[]) => Promise.all(tabs.map((tab) => tab.evaluate(() => document.visibilityState)))
export const refreshRequests = (tab: Tab) => tab.evaluate(() => window.sessionKeeper!.getStats().refreshRequests)

/**
 * Every tab asked for tokens all along, never got an expired one, never an error. A tab the
 * engine hides has its 50 ms sampling interval throttled to about once a second (Chromium,
 * Firefox, WebKit alike), so "all along" is `minSamples` for a visible tab and one sample per
 * two seconds of `seconds` for the others.
 */
export function expectSound(all: TabCounts[], minSamples: number, seconds: number): void {
  all.forEach((c, i) => {
    expect(c.samples, `samples in tab ${i}`).toBeGreaterThan(c.hidden ? Math.floor(seconds / 2) : minSamples)
    expect(c.expired, `expired answers in tab ${i}`).toBe(0)
    expect(c.errors, `getToken() errors in tab ${i}`).toBe(0)
  })
}

/** Closes what a test opened, whatever happened in it. */
export async function closeAll(...things: ({ close(): Promise<void> } | undefined)[]): Promise<void> {
  for (const thing of things) await thing?.close().catch(() => {})
}

/**
 * A `describe` block's engine (`useEngine`), and each test's app and browser session, closed
 * after the test: opened by `tabs()`, or handed over with `keep()` by a test that opens its own.
 */
export function useTabs(name: EngineName) {
  const browser = useEngine(name)
  const open: { app?: App; session?: Session } = {}
  afterEach(async () => {
    await closeAll(open.session, open.app)
    open.app = open.session = undefined
  })
  return {
    get engine(): Engine {
      return browser.engine
    },
    get app(): App {
      return open.app!
    },
    get session(): Session {
      return open.session!
    },
    keep(app: App, session?: Session): void {
      Object.assign(open, { app, session })
    },
    /** `count` tabs of one session (see `openTabs`). */
    tabs: async (count: number, options: TabsOptions = {}): Promise<Tab[]> => {
      const opened = await openTabs(browser.engine, count, options)
      Object.assign(open, { app: opened.app, session: opened.session })
      return opened.tabs
    },
  }
}

declare global {
  interface Window {
    sessionKeeper?: import('../../src/index.js').SessionKeeper
  }
}
