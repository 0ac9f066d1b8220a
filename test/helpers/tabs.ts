import { createSessionKeeper, type SessionKeeper, type SessionKeeperOptions } from '../../src/index.js'
import { FakeEnvironment, FakeLocks, FakeProxy } from './fakes.js'

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
