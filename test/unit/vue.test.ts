import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createApp, defineComponent, effectScope, h, isReadonly, nextTick } from 'vue'
import { createSessionKeeperPlugin, useSession } from '../../src/vue/index.js'
import { sessionJwt } from '../helpers/jwt.js'
import { World } from '../helpers/tabs.js'
import { advance, useFakeTime } from '../helpers/time.js'

let world: World
beforeEach(() => {
  useFakeTime()
  world = new World()
  world.proxy.latencyMs = 0
  world.cookie = sessionJwt(Date.now())
})
afterEach(() => {
  world.closeAll()
  vi.useRealTimers()
})

describe('session-keeper/vue', () => {
  it('returns read-only refs that follow the state, and unsubscribes when the scope ends', async () => {
    const tab = world.open('v')
    tab.keeper.start()
    await advance(300)
    const scope = effectScope()
    const session = scope.run(() => useSession(tab.keeper))!
    expect(isReadonly(session.state)).toBe(true)
    expect(session.status.value).toBe('active')
    const first = session.token.value
    await advance(46_000)
    expect(session.token.value).not.toBe(first)
    expect(session.expiresAt.value).toBe(tab.keeper.getState().expiresAt)
    scope.stop()
    const frozen = session.token.value
    await advance(46_000)
    expect(session.token.value).toBe(frozen) // no longer subscribed
    expect(tab.keeper.getState().token).not.toBe(frozen)
  })

  it('provides the keeper with a plugin that starts it and stops it on unmount', async () => {
    const tab = world.open('plugin')
    const Status = defineComponent({
      setup() {
        const { status } = useSession()
        return () => h('p', status.value)
      },
    })
    const el = document.createElement('div')
    const app = createApp(Status).use(createSessionKeeperPlugin({ keeper: tab.keeper }))
    app.mount(el)
    await advance(300)
    await nextTick()
    expect(el.textContent).toBe('active')
    expect(tab.env.listenerCount).toBe(1)
    tab.keeper.signOut()
    await nextTick()
    expect(el.textContent).toBe('signedOut')
    app.unmount()
    expect(tab.env.listenerCount).toBe(0)
  })

  it('explains a missing plugin', () => {
    expect(() => effectScope().run(() => useSession())).toThrow(/plugin/)
  })
})
