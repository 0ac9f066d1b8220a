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
    options.onRecoveryRequired = () => reloadWhenVisible(win)
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

function reloadWhenVisible(win: Window): void {
  const doc = win.document
  if (doc.visibilityState === 'visible') return win.location.reload()
  const onVisible = () => {
    if (doc.visibilityState !== 'visible') return
    doc.removeEventListener('visibilitychange', onVisible)
    win.location.reload()
  }
  doc.addEventListener('visibilitychange', onVisible)
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
}
