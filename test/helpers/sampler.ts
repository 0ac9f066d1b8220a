import type { Page } from 'playwright-core'

/**
 * An init script for real-browser tests: every 50 ms the page asks `getToken()` and checks the
 * answer's `exp` against the clock, recording how long each call waited. It also counts
 * `session-keeper:recovery` events.
 */
export const SAMPLER = `
  window.__samples = 0; window.__expired = 0; window.__errors = 0; window.__waits = []; window.__recoveries = 0;
  addEventListener('session-keeper:recovery', () => window.__recoveries++);
  setInterval(async () => {
    if (!window.sessionKeeper) return
    const asked = performance.now()
    try {
      const token = await window.sessionKeeper.getToken()
      if (!token) return
      window.__samples++
      window.__waits.push(performance.now() - asked)
      const exp = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).exp
      if (exp * 1000 <= Date.now()) window.__expired++
    } catch (e) { window.__errors++ }
  }, 50)
`

export interface SamplerCounts {
  samples: number
  expired: number
  errors: number
  waits: number[]
}

export function samplerCounts(page: Page): Promise<SamplerCounts> {
  return page.evaluate(() => {
    const w = window as unknown as { __samples: number; __expired: number; __errors: number; __waits: number[] }
    return { samples: w.__samples, expired: w.__expired, errors: w.__errors, waits: w.__waits }
  })
}
