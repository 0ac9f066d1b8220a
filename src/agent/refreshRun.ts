import { sleep } from '../core/clock.js'
import { localExpiry, refreshMarginMs, type HeldToken } from '../core/timing.js'
import { MAX_HOLD_MS, type Transport } from '../core/transport.js'
import { RefreshError } from '../errors/RefreshError.js'
import { type LockGrant, type LockManagerLike, withLock } from '../tabs/locks.js'
import {
  SUPERSEDED_POLL_MS,
  LOCK_JITTER_MS,
  LOCK_RESERVE_MS,
  LOCK_WAIT_MIN_MS,
  RECENT_ANNOUNCEMENT_MS,
  SUPERSEDED_WAIT_MS,
} from './delays.js'
import { cookieValue, type ResolvedOptions } from './options.js'
import { outcomeOf } from './outcome.js'
import { type AgentState, failedAttempts, isDue, recoveryError, retryAt } from './state.js'
import type { AgentEvent, Trigger } from './transition.js'

/** What a refresh run needs besides its tab: the lock, the request, and the options that time them. */
export interface RunDeps {
  options: ResolvedOptions
  locks: LockManagerLike
  transport: Transport
  tabId: string
}

/** How a run sees its tab and reports to it: the state as it is now, and events. */
export interface RunHost {
  state(): AgentState
  dispatch(event: AgentEvent): void
  /** Resolves once `done()` holds (re-checked on every change of state) or after `ms`. */
  until(done: () => boolean, ms: number): Promise<void>
  /** Asks the other tabs to speak (a `hello`): whatever they had sent before arrives first. */
  ping(): void
  /** Another tab has spoken since the last `ping`. */
  heard(): boolean
}

/**
 * One refresh under the cross-tab lock: wait for the lock (bounded, so that a frozen holder is
 * stolen from in time), re-check whether it is still needed (another tab may have refreshed
 * meanwhile), and make one request, whose outcome becomes events for the tab. `signal` ends the
 * run at once: the wait, the lock and the request (it rejects with the signal's `AbortError`).
 */
export async function runRefresh(deps: RunDeps, host: RunHost, trigger: Trigger, start: HeldToken, signal?: AbortSignal): Promise<void> {
  const { options } = deps
  const { clock } = options
  const lockName = `session-keeper:${options.channelName}:refresh`
  const stillNeeded = () => {
    const s = host.state()
    if (!s.running || s.signedOut || s.held === null || recoveryError(s)) return false
    if (trigger === 'force') return s.held.token.raw === start.token.raw
    return isDue(s, clock.now(), options.refreshMarginMs)
  }
  // Another tab's announced progress extends the wait, but never into the last seconds of the
  // token's life: a holder that keeps announcing and never answers cannot stall us past expiry.
  const progressSince = (since: number) => {
    const remote = host.state().remote
    return remote !== null && remote.since > since && lockWaitMs(deps, host.state()) > LOCK_WAIT_MIN_MS + LOCK_JITTER_MS
  }
  await withLock(deps.locks, lockName, () => lockWaitMs(deps, host.state()), clock, holding, progressSince, signal)

  async function holding(grant: LockGrant): Promise<void> {
    host.dispatch({ type: 'lock-granted', grant })
    // A tab that stood by behind the refresher is granted the lock once the refresher lets go,
    // after its token came over the channel (posted first): it lets go at once, reading nothing.
    if (!stillNeeded()) return
    const cookie = cookieValue(options)
    if (cookie !== null) host.dispatch({ type: 'cookie-read', raw: cookie })
    if (!stillNeeded()) return
    // Another tab held the lock, or announced a refresh just now (two tabs can steal from one
    // frozen holder within moments of each other): its outcome may be on its way over the
    // channel (nothing orders a lock grant after a message), unless it died. Wait a moment:
    // until any tab answers a `hello` (what the holder sent before letting go is in by then;
    // a message is not throttled in a hidden tab, a timer is), at most `handoffWaitMs`.
    const remote = host.state().remote
    const announcedRecently = remote !== null && clock.now() - remote.since < RECENT_ANNOUNCEMENT_MS
    if (grant === 'waited' || (grant === 'free' && remote) || (grant === 'stolen' && announcedRecently)) {
      host.ping()
      await host.until(() => !stillNeeded() || clock.now() < retryAt(host.state()) || host.heard(), options.handoffWaitMs)
      host.dispatch({ type: 'remote-done' })
      if (!stillNeeded()) return
    }
    // A pending backoff holds for everyone, a forced refresh too (no request before `Retry-After`);
    // only "not until asked" (Infinity) gives way to being asked.
    const notBefore = retryAt(host.state())
    if (clock.now() < notBefore && (trigger !== 'force' || notBefore !== Infinity)) return
    if (!options.environment.isOnline() || signal?.aborted) return
    await attempt(deps, host, host.state().held!, signal)
  }
}

/** One request to the proxy, by the tab holding the refresh lock; its outcome becomes events. */
async function attempt(deps: RunDeps, host: RunHost, current: HeldToken, signal?: AbortSignal): Promise<void> {
  const { clock, retryBaseDelayMs, retryMaxDelayMs, random } = deps.options
  host.dispatch({ type: 'request-sent' })
  const sentAt = clock.now()
  let answer: Awaited<ReturnType<Transport>> | RefreshError
  try {
    answer = await deps.transport(current.token, signal)
  } catch (error) {
    if (!(error instanceof RefreshError)) throw error
    answer = error
  }
  if (!host.state().running || signal?.aborted) return
  if (answer instanceof RefreshError && answer.code === 'recovery_required' && answer.reason === 'token_consumed') {
    await awaitSupersedingCookie(deps, host, current)
  }
  const events = outcomeOf(answer, {
    current,
    sentAt,
    receivedAt: clock.now(),
    tabId: deps.tabId,
    previousAttempt: failedAttempts(host.state()),
    backoff: { baseDelayMs: retryBaseDelayMs, maxDelayMs: retryMaxDelayMs, random },
  })
  for (const event of events) host.dispatch(event)
}

/**
 * Clerk says the token was refreshed already, and the proxy kept no result: someone else refreshed
 * it, usually Clerk's middleware on a page GET that carried it, whose answer sets the new
 * `__session`. That answer may land a moment after ours: watch the cookie for a while before
 * concluding that this browser needs recovery. A newer token of the session is adopted, and the
 * recovery then concerns a token no longer held: it is dropped.
 */
async function awaitSupersedingCookie({ options }: RunDeps, host: RunHost, current: HeldToken): Promise<void> {
  const giveUpAt = options.clock.now() + SUPERSEDED_WAIT_MS
  for (;;) {
    const cookie = cookieValue(options)
    if (cookie !== null) host.dispatch({ type: 'cookie-read', raw: cookie })
    if (host.state().held?.token.raw !== current.token.raw || options.clock.now() >= giveUpAt) return
    await sleep(options.clock, SUPERSEDED_POLL_MS)
  }
}

/**
 * Bounded so that, behind a frozen holder, some of the token's life remains for our own request:
 * 5 s, or half the refresh margin when that is shorter, so that a holder's slow answer inside a
 * short margin is still waited for. A request the holder sent within `MAX_HOLD_MS` (and a
 * second of clock uncertainty) of expiry may be held by the proxy until just after expiry; ours
 * would only join it there, so the wait runs until then.
 */
function lockWaitMs({ options }: RunDeps, state: AgentState): number {
  const held = state.held
  const left = held ? localExpiry(held) - options.clock.now() : Infinity
  const margin = held ? refreshMarginMs(held.token.lifetimeMs, options.refreshMarginMs) : Infinity
  const mayBeHeld = held !== null && state.remote !== null && localExpiry(held) - state.remote.since <= MAX_HOLD_MS + 1_000
  const reserve = mayBeHeld ? -MAX_HOLD_MS : Math.min(LOCK_RESERVE_MS, margin / 2)
  const wait = Math.max(LOCK_WAIT_MIN_MS, Math.min(options.lockTimeoutMs, left - reserve))
  // Jitter, so that tabs behind the same frozen holder do not all steal at once.
  return wait + Math.round(options.random() * LOCK_JITTER_MS)
}
