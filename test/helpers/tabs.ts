import { createSessionKeeper, type SessionKeeper, type SessionKeeperOptions } from '../../src/index.js'
import { afterEach, beforeEach, vi } from 'vitest'
import { FakeEnvironment, FakeLocks, FakeProxy } from './fakes.js'
import { advance, useFakeTime } from './time.js'

export interface Tab {
  id: string
  keeper: SessionKeeper
  env: FakeEnvironment
  channels: BroadcastChannel[]
}

let worldCount = 0

/** Tabs of one origin: a shared proxy, shared locks and real BroadcastChannels. */
export class World {
  readonly proxy = new FakeProxy()
  readonly locks = new FakeLocks()
  readonly channelName = `test-${process.pid}-${++worldCount}`
  readonly tabs: Tab[] = []
  /** The cookie jar the tabs share, as one browser profile does. */
  cookie: string | null = null

  /** Makes the proxy's answers land in every tab's cookie jar, as its Set-Cookie would. */
  shareCookies(): void {
    this.proxy.onIssue = (jwt) => {
      this.cookie = jwt
      for (const tab of this.tabs) tab.env.cookies.set('__session', jwt)
    }
  }

  open(id: string, options: Partial<SessionKeeperOptions> & { env?: Partial<FakeEnvironment> } = {}): Tab {
    const env = Object.assign(new FakeEnvironment(), options.env ?? {})
    if (this.cookie) env.cookies.set('__session', this.cookie)
    const channels: BroadcastChannel[] = []
    const keeper = createSessionKeeper({
      endpoint: '/api/session/refresh',
      channelName: this.channelName,
      fetch: this.proxy.fetch,
      environment: env,
      locks: this.locks.forTab(id),
      channel: (name) => {
        const channel = new BroadcastChannel(name)
        channels.push(channel)
        return channel as unknown as import('../../src/index.js').ChannelLike
      },
      ...options,
    })
    const tab = { id, keeper, env, channels }
    this.tabs.push(tab)
    return tab
  }

  /** Opens `count` tabs (`t0`, `t1`, …; `optionsOf(i)` for each), starts them, and lets them settle. */
  async openTabs(count: number, optionsOf: (index: number) => Parameters<World['open']>[1] = () => ({})): Promise<Tab[]> {
    const tabs = Array.from({ length: count }, (_, i) => this.open(`t${i}`, optionsOf(i)))
    for (const tab of tabs) tab.keeper.start()
    await advance(300)
    return tabs
  }

  /** What a crash looks like from outside: no more messages, and the browser frees its locks. */
  crash(tab: Tab): void {
    for (const channel of tab.channels) channel.close()
    tab.keeper.stop()
    this.locks.crash(tab.id)
  }

  closeAll(): void {
    for (const tab of this.tabs) tab.keeper.stop()
  }
}

/**
 * A new World for each test, in fake time (from `startMs`), closed afterwards: registers the
 * `beforeEach` and `afterEach` that every multi-tab test needs. `setup` receives the new World.
 */
export function worldPerTest(setup: (world: World) => void, startMs?: number): void {
  let world: World | null = null
  beforeEach(() => {
    useFakeTime(startMs)
    world = new World()
    setup(world)
  })
  afterEach(() => {
    world?.closeAll()
    vi.useRealTimers()
  })
}
