/** Why the agent was woken: the page came back into view, the network came back, a cookie changed … */
export type WakeReason = 'visible' | 'focus' | 'online' | 'offline' | 'pageshow' | 'pagehide' | 'cookie'

/** Without the Cookie Store API, `document.cookie` is compared this often (a string read). */
const COOKIE_POLL_MS = 1_000

/**
 * The browser as the agent sees it. Injected in tests; `browserEnvironment()` is the default.
 * Nothing here is touched at import time, so importing the package is safe during SSR.
 */
export interface Environment {
  /** `document.visibilityState === 'visible'`. */
  isVisible(): boolean
  /** `document.hasFocus()`. */
  hasFocus(): boolean
  /** `navigator.onLine`; true when unknown. */
  isOnline(): boolean
  /** The value of a cookie readable by page scripts, or null. */
  readCookie(name: string): string | null
  /** Expires a cookie readable by page scripts (on `signOut`). */
  deleteCookie(name: string): void
  /**
   * Starts listening to page events; returns the function that stops. With `cookieName`, only a
   * change of that cookie is a `'cookie'` wake.
   */
  listen(onWake: (reason: WakeReason) => void, cookieName?: string): () => void
  /** Dispatches a `CustomEvent` on `window` (e.g. `session-keeper:recovery`). */
  dispatch?(type: string, detail: unknown): void
}

export function browserEnvironment(): Environment {
  const doc = typeof document === 'undefined' ? undefined : document
  const win = typeof window === 'undefined' ? undefined : window
  const nav = typeof navigator === 'undefined' ? undefined : navigator
  return {
    isVisible: () => doc?.visibilityState !== 'hidden',
    hasFocus: () => (doc?.hasFocus ? doc.hasFocus() : true),
    isOnline: () => nav?.onLine !== false,
    readCookie: (name) => (doc ? readCookie(doc.cookie, name) : null),
    deleteCookie: (name) => {
      if (doc) doc.cookie = `${name}=; Path=/; Max-Age=0; SameSite=Lax`
    },
    dispatch: (type, detail) => {
      if (win && typeof CustomEvent === 'function') win.dispatchEvent(new CustomEvent(type, { detail }))
    },
    listen: (onWake, cookieName) => {
      if (!win || !doc) return () => {}
      const onVisibility = () => doc.visibilityState === 'visible' && onWake('visible')
      const handlers: [EventTarget, string, (event: Event) => void][] = [
        [doc, 'visibilitychange', onVisibility],
        [win, 'focus', () => onWake('focus')],
        [win, 'online', () => onWake('online')],
        [win, 'offline', () => onWake('offline')],
        [win, 'pageshow', () => onWake('pageshow')],
        [win, 'pagehide', () => onWake('pagehide')],
      ]
      // A sign-in (or Clerk's handshake) in another tab or by a fetch sets cookies without a page
      // load: the Cookie Store API tells at once where the browser has it (and which cookies
      // changed: every refresh sets others too); elsewhere, a cheap poll.
      const cookieStore = (win as { cookieStore?: EventTarget }).cookieStore
      const watched = () => (cookieName === undefined ? doc.cookie : readCookie(doc.cookie, cookieName))
      let poll: ReturnType<typeof setInterval> | undefined
      if (cookieStore) handlers.push([cookieStore, 'change', (event) => concerns(event, cookieName) && onWake('cookie')])
      else {
        let last = watched()
        poll = setInterval(() => {
          const now = watched()
          if (now === last) return
          last = now
          onWake('cookie')
        }, COOKIE_POLL_MS)
      }
      for (const [target, type, handler] of handlers) target.addEventListener(type, handler)
      return () => {
        clearInterval(poll)
        for (const [target, type, handler] of handlers) target.removeEventListener(type, handler)
      }
    },
  }
}

/** Whether a Cookie Store `change` event names the cookie (any event, without a name or a list). */
function concerns(event: Event, name: string | undefined): boolean {
  const { changed, deleted = [] } = event as Event & { changed?: { name?: string }[]; deleted?: { name?: string }[] }
  return name === undefined || !changed || [...changed, ...deleted].some((cookie) => cookie.name === name)
}

/** Finds one cookie in a `document.cookie` string; tolerant of spaces and `=` in values. */
export function readCookie(cookies: string, name: string): string | null {
  for (const part of cookies.split(';')) {
    const eq = part.indexOf('=')
    if (eq === -1) continue
    if (part.slice(0, eq).trim() !== name) continue
    const value = part.slice(eq + 1).trim()
    try {
      return value === '' ? null : decodeURIComponent(value)
    } catch {
      return value
    }
  }
  return null
}
