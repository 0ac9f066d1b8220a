import type { SessionKeeper } from '../agent/createSessionKeeper.js'
import type { SessionKeeperOptions } from '../agent/options.js'
import type { SessionState } from '../agent/state.js'

/** `data-*` attributes that carry numbers, by option name. */
const NUMBER_OPTIONS = [
  'refreshMarginMs',
  'requestTimeoutMs',
  'retryBaseDelayMs',
  'retryMaxDelayMs',
  'getTokenTimeoutMs',
  'lockTimeoutMs',
  'handoffWaitMs',
  'helloWaitMs',
] as const

/** Reads options from a script tag's `data-*` attributes (`data-cookie-name` → `cookieName`). */
export function optionsFromDataset(dataset: DOMStringMap): SessionKeeperOptions | null {
  if (!dataset.endpoint) return null
  const options: SessionKeeperOptions = { endpoint: dataset.endpoint }
  if (dataset.cookieName) options.cookieName = dataset.cookieName
  if (dataset.channelName) options.channelName = dataset.channelName
  if (dataset.onRecovery !== undefined && dataset.onRecovery !== 'reload') {
    throw new TypeError('session-keeper: data-on-recovery takes "reload"')
  }
  for (const name of NUMBER_OPTIONS) {
    const raw = dataset[name]
    if (raw === undefined) continue
    const value = Number(raw)
    if (!Number.isFinite(value) || value < 0) throw new TypeError(`session-keeper: data-${kebab(name)} must be a number`)
    options[name] = value
  }
  return options
}

/**
 * With `data-endpoint`, creates and starts `window.sessionKeeper` and re-dispatches every
 * state change as `session-keeper:change` on `window`. Without it, does nothing.
 */
export function autoStart(
  script: HTMLOrSVGScriptElement | null,
  win: Window,
  create: (options: SessionKeeperOptions) => SessionKeeper,
): SessionKeeper | null {
  const options = script instanceof HTMLScriptElement ? optionsFromDataset(script.dataset) : null
  if (!options) return null
  // data-on-recovery="reload": Clerk's middleware runs its handshake on the reload and re-plants
  // the cookies; a hidden page reloads when it is next shown, not behind the user's back.
  if (script instanceof HTMLScriptElement && script.dataset.onRecovery === 'reload') {
    let pending = false // every tab hears of a recovery, some more than once: one planned reload at a time
    options.onRecoveryRequired = () => {
      if (pending) return
      pending = true
      reloadThroughHandshake(
        win,
        () => keeper,
        () => (pending = false),
      )
    }
  }
  const keeper = create(options)
  const dispatch = (state: SessionState) => win.dispatchEvent(new CustomEvent('session-keeper:change', { detail: state }))
  keeper.subscribe(dispatch)
  win.sessionKeeper = keeper
  keeper.start()
  // The first states are dispatched while this script runs, before the page's own scripts below
  // it have added their listeners: the state as it is then is dispatched once more when the
  // document has been parsed.
  if (win.document.readyState === 'loading') {
    win.document.addEventListener('DOMContentLoaded', () => dispatch(keeper.getState()), { once: true })
  }
  return keeper
}

/**
 * Clerk's middleware accepts a token until this long after its expiry (its default clock skew):
 * a page load before then is signed in with the old token and runs no handshake, so the reloaded
 * page would meet the same 409 again, and reload again.
 */
const CLERK_CLOCK_SKEW_MS = 5_000
/** Past the skew by this much more, for the clocks of this machine and the server to differ a little. */
const SKEW_MARGIN_MS = 1_000

/**
 * Reloads the page once the reload will run Clerk's handshake: the page is visible, and the token
 * in recovery has expired past the middleware's skew. Nothing is reloaded when the recovery ended
 * meanwhile (another tab's handshake put a newer token in the cookie) or the session did.
 */
function reloadThroughHandshake(win: Window, keeper: () => SessionKeeper, done: () => void): void {
  const doc = win.document
  let timer: ReturnType<typeof setTimeout> | undefined
  const stop = () => {
    clearTimeout(timer)
    doc.removeEventListener('visibilitychange', attempt)
    done()
  }
  function attempt(): void {
    clearTimeout(timer)
    const state = keeper().getState()
    if (state.status === 'signedOut' || state.error?.code !== 'recovery_required') return stop()
    if (doc.visibilityState !== 'visible') return // visibilitychange tries again
    const waitMs = state.expiresAt === null ? 0 : state.expiresAt + CLERK_CLOCK_SKEW_MS + SKEW_MARGIN_MS - Date.now()
    if (waitMs > 0) {
      timer = setTimeout(attempt, waitMs)
      return
    }
    stop()
    win.location.reload()
  }
  doc.addEventListener('visibilitychange', attempt)
  // Called while the agent applies the 409: look once its state is stored.
  timer = setTimeout(attempt, 0)
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
}
