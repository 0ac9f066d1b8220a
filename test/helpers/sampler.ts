import type { Tab } from '../browser/drivers/types.js'

/**
 * Page script for real-browser tests, run before the library (the app serves it in `<head>`):
 * every 50 ms the page asks `getToken()` and checks the answer's `exp` against the clock,
 * recording how long each call waited and when it was answered. It also counts
 * `session-keeper:recovery` events.
 */
export const SAMPLER = `
  window.__samples = 0; window.__expired = 0; window.__errors = 0; window.__waits = []; window.__answeredAt = []; window.__recoveries = 0;
  addEventListener('session-keeper:recovery', () => window.__recoveries++);
  setInterval(async () => {
    if (!window.sessionKeeper) return
    const asked = performance.now()
    try {
      const token = await window.sessionKeeper.getToken()
      if (!token) return
      window.__samples++
      window.__waits.push(performance.now() - asked)
      window.__answeredAt.push(Date.now())
      const exp = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).exp
      if (exp * 1000 <= Date.now()) window.__expired++
    } catch (e) { window.__errors++ }
  }, 50)
`

/**
 * Page script that records what an engine's automation protocol may not report (WebDriver
 * Classic reports none of it): every `session-keeper:change` (status, token `exp`, time),
 * `console.log` lines, `console.error` calls, uncaught errors and rejections, and every
 * `pageshow` with `persisted`.
 */
export const RECORDER = `
  window.__changes = []; window.__logs = []; window.__pageErrors = []; window.__pageshows = [];
  addEventListener('session-keeper:change', (e) => {
    const s = e.detail
    const exp = s.token ? JSON.parse(atob(s.token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).exp : null
    window.__changes.push({ status: s.status, exp, at: Date.now(), code: s.error ? s.error.code : null, source: s.lastUpdate ? s.lastUpdate.source : null })
  });
  addEventListener('error', (e) => window.__pageErrors.push(String(e.message)));
  addEventListener('unhandledrejection', (e) => window.__pageErrors.push(String(e.reason)));
  addEventListener('pageshow', (e) => window.__pageshows.push({ persisted: e.persisted, at: Date.now() }));
  { const log = console.log.bind(console); console.log = (...args) => { window.__logs.push(args.map(String).join(' ')); log(...args) } }
  { const error = console.error.bind(console); console.error = (...args) => { window.__pageErrors.push('console.error: ' + args.map(String).join(' ')); error(...args) } }
`

export interface SamplerCounts {
  samples: number
  expired: number
  errors: number
  waits: number[]
  /** When each of `waits` ended (ms since epoch). */
  answeredAt: number[]
}

export function samplerCounts(tab: Tab): Promise<SamplerCounts> {
  return tab.evaluate(() => {
    const w = window as unknown as { __samples: number; __expired: number; __errors: number; __waits: number[]; __answeredAt: number[] }
    return { samples: w.__samples, expired: w.__expired, errors: w.__errors, waits: w.__waits, answeredAt: w.__answeredAt }
  })
}

export interface Change {
  status: string
  exp: number | null
  at: number
  code: string | null
  /** How the token held arrived (`lastUpdate.source`). */
  source: string | null
}

export function changes(tab: Tab): Promise<Change[]> {
  return tab.evaluate(() => (window as unknown as { __changes: Change[] }).__changes)
}
