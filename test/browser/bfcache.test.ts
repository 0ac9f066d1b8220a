import { describe, expect, it } from 'vitest'
import { changes } from '../helpers/sampler.js'
import type { EngineName, Tab } from './drivers/index.js'
import { engines, refreshRequests, sleep, state, useTabs } from './harness.js'

/**
 * Whether the engine, as these tests drive it, restores the page from the back/forward cache
 * after the other tab's refreshes went by (measured; a change here is news either way). All three
 * do since the agent closes its channel when the page goes into the cache (Chromium and Firefox
 * evict a cached page when a BroadcastChannel message arrives for it: `notRestoredReasons`
 * `broadcastchannel-message` in Chromium; WebKit keeps it but drops the messages) and, restored,
 * opens a new one and catches up from the cookie and the other tabs.
 */
const RESTORES: Record<EngineName, boolean> = { chromium: true, firefox: true, webkit: true }
/**
 * The same for a page that leaves while its own refresh request is in flight (measured). The agent
 * aborts the request and lets go of the lock at pagehide; Firefox still loads such a page anew
 * (its request was in flight when the navigation began), which costs the page a load, not a token.
 */
const RESTORES_MID_REQUEST: Record<EngineName, boolean> = { chromium: true, firefox: false, webkit: true }

/** Back from the page of the origin without the library (`Tab.back()`); its last `pageshow` and how it came. */
async function goBack(page: Tab) {
  await page.back()
  await page.waitFor(
    () =>
      location.pathname === '/' &&
      document.readyState === 'complete' &&
      (window as unknown as { __pageshows?: unknown[] }).__pageshows?.length,
    undefined,
    { timeoutMs: 10_000, what: 'the page, back' },
  )
  return page.evaluate(() => {
    const shows = (window as unknown as { __pageshows: { persisted: boolean; at: number }[] }).__pageshows
    const entry = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming & { notRestoredReasons?: unknown }
    return { shown: shows.at(-1)!, shows: shows.length, type: entry?.type, notRestoredReasons: entry?.notRestoredReasons ?? null }
  })
}

describe.each(engines)('[%s]', (name) => {
  const browser = useTabs(name)

  it('back/forward cache: a page away for longer than a token lifetime comes back with the current token at once, without a request of its own', async () => {
    const [page, other] = (await browser.tabs(2, { lifetimeSeconds: 6 })) as [Tab, Tab]
    const { app } = browser
    const sentBefore = await refreshRequests(page)
    await page.goto(`${app.origin}/junk`) // a page of the origin without the library
    const leftAt = Date.now()
    await sleep(6_500) // the other tab refreshes twice meanwhile
    // Back just after its next refresh: the token is fresh, so a request now would be a catch-up
    // of its own, not the next scheduled refresh (which the front tab sends when it is due).
    const seen = app.requests.length
    for (const deadline = Date.now() + 5_000; app.requests.length === seen && Date.now() < deadline; ) await sleep(20)
    await sleep(300)
    const back = await goBack(page)
    const restored = back.shown.persisted
    await page.waitFor(
      () => {
        const s = window.sessionKeeper!.getState()
        return s.status === 'active' && s.expiresAt! > Date.now() + 500
      },
      undefined,
      { timeoutMs: 3_000, what: 'a valid token in the page that came back' },
    )
    const mine = await state(page)
    const theirs = await state(other)
    // The first state of this document with a valid token since it came back: when restored, from
    // the moment it resumed (a timer or a cookie event may run just before pageshow); when loaded
    // anew, during the load, before pageshow (then "at once" is 0).
    const valid = (await changes(page)).find((c) => (!restored || c.at >= leftAt) && c.status === 'active' && c.exp! * 1000 > back.shown.at)
    const adoptedAt = valid && Math.max(valid.at, back.shown.at)
    const ownRequests = (await refreshRequests(page)) - (restored ? sentBefore : 0)
    console.log(
      `[${name}] back after ${back.shown.at - leftAt} ms away: ${restored ? 'restored from the back/forward cache' : `loaded anew (${back.type})`}` +
        `${back.notRestoredReasons ? `, notRestoredReasons ${JSON.stringify(back.notRestoredReasons)}` : ''}; current token adopted ${adoptedAt === undefined ? '?' : adoptedAt - back.shown.at} ms after pageshow (from ${valid?.source}); requests of its own ${ownRequests}`,
    )
    expect(back.shown.at - leftAt).toBeGreaterThan(6_000) // longer than a token lifetime
    expect(restored).toBe(RESTORES[name])
    if (restored) {
      expect(back.shows).toBe(2) // the same document: its first pageshow and this one
      if (name === 'chromium') expect(back.notRestoredReasons).toBeNull()
    }
    expect(mine.token).toBe(theirs.token) // the current token, not the one it left with
    expect(adoptedAt, `changes: ${JSON.stringify((await changes(page)).map((c) => ({ ...c, at: c.at - back.shown.at })))}`).toBeDefined()
    expect(adoptedAt! - back.shown.at).toBeLessThan(500) // at once
    expect(valid!.source).not.toBe('refresh')
    expect(ownRequests).toBe(0)
  })

  it('back/forward cache: a page that leaves in the middle of its own refresh lets go of the lock at once, and comes back with the current token', async () => {
    const [page, other] = (await browser.tabs(2, { lifetimeSeconds: 30 })) as [Tab, Tab]
    const { app } = browser
    app.clerk.setFaults({ latencyMs: 1_500 })
    await page.evaluate(() => {
      void window.sessionKeeper!.getToken({ forceRefresh: true }).catch(() => {})
    })
    await page.waitFor(() => window.sessionKeeper!.getState().status === 'refreshing', undefined, { timeoutMs: 3_000, what: 'its refresh' })
    await page.goto(`${app.origin}/junk`)
    app.clerk.setFaults({ latencyMs: 20 })
    await sleep(2_000) // its request, aborted in the page, may still reach Clerk meanwhile
    const askedAt = Date.now()
    await other.evaluate(() => window.sessionKeeper!.getToken({ forceRefresh: true }).then(() => {}))
    const tookMs = Date.now() - askedAt
    console.log(`[${name}] the other tab's forced refresh took ${tookMs} ms`)
    // The lock was let go at pagehide: not waited for (5 s and more) nor stolen from a frozen page.
    expect(tookMs).toBeLessThan(2_000)
    expect((await other.evaluate(() => window.sessionKeeper!.getStats())).lockSteals).toBe(0)
    const back = await goBack(page)
    const persisted = back.shown.persisted
    console.log(`[${name}] back: ${persisted ? 'restored' : 'loaded anew'}, notRestoredReasons ${JSON.stringify(back.notRestoredReasons)}`)
    expect(persisted).toBe(RESTORES_MID_REQUEST[name])
    await page.waitFor(() => window.sessionKeeper!.getState().status === 'active', undefined, { timeoutMs: 3_000, what: 'active again' })
    await sleep(1_000)
    expect((await state(page)).token).toBe((await state(other)).token)
    // Its one request (the aborted one) when restored; none when loaded anew: it caught up without.
    expect(await refreshRequests(page)).toBe(persisted ? 1 : 0)
  })
})
