import type { Changes } from '../core/changes.js'
import { localExpiry, refreshMarginMs, type HeldToken } from '../core/timing.js'
import type { Transport } from '../core/transport.js'
import { RefreshError } from '../errors/RefreshError.js'
import type { TabChannel } from '../tabs/channel.js'
import { type LockManagerLike, withLock } from '../tabs/locks.js'
import { readCookie, shareHeld } from './adoption.js'
import { DELAYS } from './delays.js'
import type { AgentEvent } from './events.js'
import type { ResolvedOptions } from './options.js'
import { outcomeOf } from './outcome.js'
import type { SessionStats } from './state.js'

export type Trigger = 'scheduled' | 'standby' | 'demand' | 'force'

/** What one refresh run reads of its tab, and the one way it changes it: `apply`. */
export interface RefreshHost {
  readonly options: ResolvedOptions
  readonly tabId: string
  readonly transport: Transport
  readonly channel: TabChannel | null
  readonly locks: LockManagerLike | null
  readonly stats: SessionStats
  readonly changes: Changes
  readonly running: boolean
  readonly held: HeldToken | null
  readonly signedOut: boolean
  readonly recoveryError: RefreshError | null
  readonly remote: { readonly from: string; readonly since: number } | null
  readonly retryAt: number
  readonly failedAttempts: number
  readonly loading: boolean
  isDue(): boolean
  apply(event: AgentEvent): void
}

/**
 * One refresh under the cross-tab lock: wait for the lock (bounded, so that a frozen holder is
 * stolen from in time), re-check whether it is still needed (another tab may have refreshed
 * meanwhile), and make one request, whose outcome becomes events for the tab to apply.
 */
export async function runRefresh(host: RefreshHost, trigger: Trigger, start: HeldToken): Promise<void> {
  const { options } = host
  const clock = options.clock
  const name = `session-keeper:${options.channelName}:refresh`
  const stillNeeded = () => {
    if (!host.running || host.signedOut || host.held === null || host.recoveryError) return false
    if (trigger === 'force') return host.held.token.raw === start.token.raw
    return host.isDue()
  }
  // Another tab's announced progress extends the wait, but never into the last seconds of the
  // token's life: a holder that keeps announcing and never answers cannot stall us past expiry.
  const progressSince = (since: number) =>
    host.remote !== null && host.remote.since > since && lockWaitMs(host) > DELAYS.lockWaitMinMs + DELAYS.lockJitterMs
  await withLock(
    host.locks!,
    name,
    () => lockWaitMs(host),
    clock,
    async (grant) => {
      if (grant === 'stolen') host.stats.lockSteals++
      if (!host.running) return
      readCookie(host)
      if (!stillNeeded()) return
      // Another tab held the lock, or announced a refresh just now (two tabs can steal from one
      // frozen holder within moments of each other): its outcome may be on its way over the
      // channel (nothing orders a lock grant after a message), unless it died. Wait a moment.
      const remote = host.remote
      const announcedRecently = remote !== null && clock.now() - remote.since < DELAYS.recentAnnouncementMs
      if (grant === 'waited' || (grant === 'free' && remote) || (grant === 'stolen' && announcedRecently)) {
        await host.changes.until(() => !stillNeeded() || clock.now() < host.retryAt, options.handoffWaitMs)
        host.apply({ type: 'remote-done' })
        if (!stillNeeded()) return
      }
      // A pending backoff holds for everyone, a forced refresh too (no request before `Retry-After`);
      // only "not until asked" (Infinity) gives way to being asked.
      if (clock.now() < host.retryAt && (trigger !== 'force' || host.retryAt !== Infinity)) return
      if (!options.environment.isOnline()) return
      await attempt(host, host.held!)
    },
    progressSince,
  )
}

/** One request to the proxy, by the tab holding the refresh lock; its outcome becomes events. */
async function attempt(host: RefreshHost, current: HeldToken): Promise<void> {
  const { options } = host
  host.channel?.post({ type: 'refreshing', sessionId: current.token.sessionId })
  host.stats.refreshRequests++
  const sentAt = options.clock.now()
  let answer: Awaited<ReturnType<Transport>> | RefreshError
  try {
    answer = await host.transport(current.token)
  } catch (error) {
    if (!(error instanceof RefreshError)) throw error
    answer = error
  }
  if (!host.running) return
  const { retryBaseDelayMs: baseDelayMs, retryMaxDelayMs: maxDelayMs, random } = options
  const events = outcomeOf(answer, {
    current,
    sentAt,
    receivedAt: options.clock.now(),
    tabId: host.tabId,
    previousAttempt: host.failedAttempts,
    backoff: { baseDelayMs, maxDelayMs, random },
  })
  for (const event of events) host.apply(event)
  // Shared even when it equals the token held (a replay, or issued within the same second):
  // the others then learn its measured clock offset.
  if (!(answer instanceof RefreshError) && host.held?.token.raw === answer.token.raw) shareHeld(host, 'refresh')
}

/**
 * Bounded so that, behind a frozen holder, some of the token's life remains for our own request:
 * 5 s, or half the refresh margin when that is shorter, so that a holder's slow answer inside a
 * short margin is still waited for.
 */
function lockWaitMs(host: RefreshHost): number {
  const { options } = host
  const held = host.held
  const left = held ? localExpiry(held) - options.clock.now() : Infinity
  const margin = held ? refreshMarginMs(held.token.lifetimeMs, options.refreshMarginMs) : Infinity
  const reserve = Math.min(DELAYS.lockReserveMs, margin / 2)
  const wait = Math.max(DELAYS.lockWaitMinMs, Math.min(options.lockTimeoutMs, left - reserve))
  // Jitter, so that tabs behind the same frozen holder do not all steal at once.
  return wait + Math.round(options.random() * DELAYS.lockJitterMs)
}
