import type { Tab } from '../browser/drivers/index.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * The physical limit of cross-tab propagation on this machine: one page posts on a raw
 * BroadcastChannel, the time until the last of the others has it (same pages, same run); 20
 * posts, 50 ms apart. `workMs`: each listener then keeps its tab busy that long (an experiment:
 * what per-tab work costs the last tab; 0 in `npm run bench`).
 */
export async function rawFanout(pages: Tab[], workMs = 0): Promise<number[]> {
  if (pages.length < 2) return []
  const name = `raw-${Math.random()}`
  await Promise.all(
    pages.map((page) =>
      page.evaluate(
        ({ name: n, work }) => {
          const w = window as unknown as { __raw: number[] }
          w.__raw = []
          new BroadcastChannel(n).onmessage = () => {
            w.__raw.push(performance.timeOrigin + performance.now())
            const until = performance.now() + work
            while (performance.now() < until);
          }
        },
        { name, work: workMs },
      ),
    ),
  )
  const sentAt: number[] = []
  for (let i = 0; i < 20; i++) {
    sentAt.push(
      await pages[0]!.evaluate((n) => {
        const at = performance.timeOrigin + performance.now()
        new BroadcastChannel(n).postMessage(at)
        return at
      }, name),
    )
    await sleep(50)
  }
  await sleep(300)
  const arrivals = await Promise.all(pages.slice(1).map((page) => page.evaluate(() => (window as unknown as { __raw: number[] }).__raw)))
  return sentAt.map((at, i) => Math.max(...arrivals.map((a) => a[i] ?? NaN)) - at)
}

/** Page script: records each new token's arrival (`Adopted`) in `window.__adopted`, from the change event. */
export const RECORD_ADOPTED = `
  window.__adopted = [];
  let lastAdopted = null;
  addEventListener('session-keeper:change', (e) => {
    const s = e.detail;
    if (s.token && s.token !== lastAdopted) {
      lastAdopted = s.token;
      const iat = JSON.parse(atob(s.token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).iat;
      window.__adopted.push({ iat, at: performance.timeOrigin + performance.now(), source: s.lastUpdate && s.lastUpdate.source });
    }
  });
`

/** A token's arrival in one tab: its `iat`, when (epoch ms, performance clock), and how. */
export interface Adopted {
  iat: number
  at: number
  source: string | null
}

/**
 * Per token, the time from the tab that refreshed it holding it (its own change event) to the
 * last of `count` tabs holding it; tokens not seen by every tab are left out.
 */
export function propagationTimes(pages: Adopted[][], count: number, after = -Infinity): number[] {
  const byIat = new Map<number, Adopted[]>()
  for (const page of pages) for (const a of page) if (a.iat > after) byIat.set(a.iat, [...(byIat.get(a.iat) ?? []), a])
  const times: number[] = []
  for (const arrivals of byIat.values()) {
    const origin = arrivals.find((a) => a.source === 'refresh')
    if (origin && arrivals.length === count) times.push(Math.max(...arrivals.map((a) => a.at)) - origin.at)
  }
  return times
}
