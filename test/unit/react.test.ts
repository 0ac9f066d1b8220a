import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { act, createElement, StrictMode, useEffect } from 'react'
import { createRoot, type Root } from 'react-dom/client'
import { renderToString } from 'react-dom/server'
import { SessionKeeperProvider, useSession, useSessionKeeper } from '../../src/react/index.js'
import { sessionJwt } from '../helpers/jwt.js'
import { World } from '../helpers/tabs.js'
import { advance, useFakeTime } from '../helpers/time.js'

declare global {
  // eslint-disable-next-line no-var
  var IS_REACT_ACT_ENVIRONMENT: boolean
}
globalThis.IS_REACT_ACT_ENVIRONMENT = true

let world: World
let root: Root
let container: HTMLElement
beforeEach(() => {
  useFakeTime()
  world = new World()
  world.proxy.latencyMs = 0
  world.cookie = sessionJwt(Date.now())
  container = document.createElement('div')
  document.body.append(container)
  root = createRoot(container)
})
afterEach(() => {
  act(() => root.unmount())
  world.closeAll()
  vi.useRealTimers()
})

function Status() {
  const state = useSession()
  return createElement('p', null, `${state.status}:${state.token?.slice(-12) ?? 'none'}`)
}

describe('session-keeper/react', () => {
  it('re-renders with the state, starts with the provider and stops on unmount', async () => {
    const tab = world.open('r')
    const renders: string[] = []
    function Probe() {
      const state = useSession()
      renders.push(state.status)
      return createElement('span', null, state.status)
    }
    await act(async () => root.render(createElement(SessionKeeperProvider, { keeper: tab.keeper }, createElement(Probe))))
    await act(() => advance(300))
    expect(container.textContent).toBe('active')
    const before = tab.keeper.getState().token
    await act(() => advance(46_000))
    expect(tab.keeper.getState().token).not.toBe(before)
    expect(renders).toContain('refreshing')
    expect(container.textContent).toBe('active')
    act(() => root.render(createElement('div')))
    expect(tab.env.listenerCount).toBe(0)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('is safe under StrictMode: one running keeper, no leaked listener', async () => {
    const tab = world.open('strict')
    const start = vi.spyOn(tab.keeper, 'start')
    await act(async () =>
      root.render(createElement(StrictMode, null, createElement(SessionKeeperProvider, { keeper: tab.keeper }, createElement(Status)))),
    )
    await act(() => advance(300))
    expect(start).toHaveBeenCalledTimes(2) // StrictMode mounts, unmounts and mounts again: start, stop, start
    expect(tab.env.listenerCount).toBe(1) // started, stopped, started again: one set of listeners
    expect(container.textContent).toMatch(/^active:/)
    act(() => root.unmount())
    root = createRoot(container)
    expect(tab.env.listenerCount).toBe(0)
  })

  it('gives components the keeper through context', async () => {
    const tab = world.open('ctx')
    let seen: unknown
    function Grab() {
      const keeper = useSessionKeeper()
      useEffect(() => {
        seen = keeper
      })
      return null
    }
    await act(async () => root.render(createElement(SessionKeeperProvider, { keeper: tab.keeper }, createElement(Grab))))
    expect(seen).toBe(tab.keeper)
  })

  it('renders the loading state on the server without starting anything', () => {
    const tab = world.open('ssr')
    const html = renderToString(createElement(SessionKeeperProvider, { keeper: tab.keeper }, createElement(Status)))
    expect(html).toContain('loading:none')
    expect(tab.env.listenerCount).toBe(0)
  })

  it('explains a missing provider', () => {
    expect(() => renderToString(createElement(Status))).toThrow(/SessionKeeperProvider/)
  })
})
