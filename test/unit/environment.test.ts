/**
 * The browser as the agent sees it (`browserEnvironment`), in happy-dom: which cookie changes
 * wake the agent. Every refresh sets cookies besides the session's (Clerk's `__client_uat`, the
 * suffixed copy), in every tab at once; only the watched one is news.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { browserEnvironment, type WakeReason } from '../../src/core/environment.js'

const clearCookies = () => {
  for (const part of document.cookie.split(';')) {
    const name = part.split('=')[0]?.trim()
    if (name) document.cookie = `${name}=; Max-Age=0; Path=/`
  }
}

afterEach(() => {
  delete (window as { cookieStore?: EventTarget }).cookieStore
  clearCookies()
  vi.useRealTimers()
})

function cookieChange(changed: { name: string }[], deleted: { name: string }[] = []): Event {
  return Object.assign(new Event('change'), { changed, deleted })
}

describe('browserEnvironment: cookie changes', () => {
  it('with the Cookie Store API, wakes only for a change or deletion of the cookie named', () => {
    const store = new EventTarget()
    ;(window as { cookieStore?: EventTarget }).cookieStore = store
    const woken: WakeReason[] = []
    const stop = browserEnvironment().listen((reason) => woken.push(reason), '__session')
    store.dispatchEvent(cookieChange([{ name: '__client_uat' }, { name: '__session_abc' }]))
    expect(woken).toEqual([])
    store.dispatchEvent(cookieChange([{ name: '__client_uat' }, { name: '__session' }]))
    store.dispatchEvent(cookieChange([], [{ name: '__session' }]))
    expect(woken).toEqual(['cookie', 'cookie'])
    // An event that does not say which cookies changed is a change.
    store.dispatchEvent(new Event('change'))
    expect(woken).toHaveLength(3)
    stop()
    store.dispatchEvent(cookieChange([{ name: '__session' }]))
    expect(woken).toHaveLength(3)
  })

  it('without a cookie name, any change wakes', () => {
    const store = new EventTarget()
    ;(window as { cookieStore?: EventTarget }).cookieStore = store
    const woken: WakeReason[] = []
    const stop = browserEnvironment().listen((reason) => woken.push(reason))
    store.dispatchEvent(cookieChange([{ name: '__client_uat' }]))
    expect(woken).toEqual(['cookie'])
    stop()
  })

  it('without it, polls document.cookie and wakes only when the named cookie changed', () => {
    vi.useFakeTimers()
    const woken: WakeReason[] = []
    const stop = browserEnvironment().listen((reason) => woken.push(reason), '__session')
    document.cookie = '__client_uat=1; Path=/'
    vi.advanceTimersByTime(1_000)
    expect(woken).toEqual([])
    document.cookie = '__session=a.b.c; Path=/'
    vi.advanceTimersByTime(1_000)
    expect(woken).toEqual(['cookie'])
    vi.advanceTimersByTime(3_000) // unchanged since: nothing more
    expect(woken).toEqual(['cookie'])
    document.cookie = '__session=; Max-Age=0; Path=/'
    vi.advanceTimersByTime(1_000)
    expect(woken).toEqual(['cookie', 'cookie'])
    stop()
  })
})
