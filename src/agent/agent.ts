import { Changes } from '../core/changes.js'
import type { Clock } from '../core/clock.js'
import type { Environment } from '../core/environment.js'
import { WakeTimer } from '../core/scheduler.js'
import { Store } from '../core/store.js'
import { fromUnmeasured, localExpiry, type HeldToken } from '../core/timing.js'
import { decodeSessionToken, isNewer } from '../core/token.js'
import type { Transport } from '../core/transport.js'
import { RefreshError } from '../errors/RefreshError.js'
import type { SessionKeeperError } from '../errors/SessionKeeperError.js'
import type { TabChannel } from '../tabs/channel.js'
import { withLock, type LockManagerLike } from '../tabs/locks.js'
import { attempt } from './attempt.js'
import type { ResolvedOptions } from './options.js'
import { deriveView, dueAt, LOADING_STATE, type AgentFacts, type SessionState, type SessionStats, type TokenSource } from './state.js'

type Trigger = 'scheduled' | 'standby' | 'demand' | 'force'

/** Refresh failures in a row, shared by all tabs, and when the next try is allowed. */
interface Backoff {
  attempt: number
  retryAt: number
  error: RefreshError
}

/**
 * One tab's view of the session: the token held, when to refresh it, and the refresh itself
 * under the cross-tab lock. Tabs agree through messages; every decision is re-made from the
 * token and the clock, so a lost or late message costs at most one extra request.
 */
export class Agent {
  readonly store: Store<SessionState>
  readonly stats: SessionStats = {
    refreshRequests: 0, refreshFailures: 0, tokensFromTabs: 0, messagesIgnored: 0,
    timerCallbacks: 0, lateTimers: 0, lockSteals: 0,
  }
  held: HeldToken | null = null
  signedOut = false
  loading = true
  /** A token found without a clock measurement that contradicts the local clock. */
  suspect = false
  /** The session that ended here: its tokens are never adopted again (late answers). */
  endedSessionId: string | null = null
  backoff: Backoff | null = null
  /** Another tab announced a refresh and has not reported its outcome yet. */
  remote: { from: string; since: number } | null = null
  #inflight: Promise<void> | null = null
  #running = false
  readonly #timer: WakeTimer
  /** Wakes `getToken()` and the handoff waits on every state change. */
  readonly changes: Changes
  readonly #clock: Clock
  readonly #env: Environment

  constructor(
    readonly options: ResolvedOptions,
    readonly tabId: string,
    readonly transport: Transport,
    public channel: TabChannel | null = null,
    public locks: LockManagerLike | null = null,
  ) {
    this.#clock = options.clock
    this.#env = options.environment
    this.changes = new Changes(this.#clock)
    this.store = new Store<SessionState>({ ...LOADING_STATE, online: this.#env.isOnline(), tabId })
    this.#timer = new WakeTimer(this.#clock, (lateByMs) => {
      this.stats.timerCallbacks++
      if (lateByMs > 1000) this.stats.lateTimers++
      this.check()
    })
  }

  get running(): boolean {
    return this.#running
  }

  setRunning(running: boolean): void {
    this.#running = running
    if (!running) this.#timer.cancel()
    this.changes.notify()
  }

  get lastError(): SessionKeeperError | null {
    return this.store.get().error
  }

  /** Retries are not allowed before this time (Infinity: not until asked). */
  get retryAt(): number {
    return this.backoff?.retryAt ?? 0
  }

  isUsable(now = this.#clock.now()): boolean {
    return this.held !== null && now < localExpiry(this.held)
  }

  isDue(now = this.#clock.now()): boolean {
    const due = dueAt(this.#facts(), now)
    return due !== null && now >= due
  }

  #facts(): AgentFacts {
    return {
      held: this.held, signedOut: this.signedOut, loading: this.loading, suspect: this.suspect,
      busy: this.#inflight !== null || this.remote !== null, retryAt: this.retryAt,
      configuredMarginMs: this.options.refreshMarginMs,
    }
  }

  /** Adopts a token if it is newer than the one held (or a new session). Returns whether it did. */
  adopt(next: HeldToken, source: TokenSource, from = this.tabId, suspect = false): boolean {
    const current = this.held
    if (next.token.sessionId === this.endedSessionId) return false
    if (!isNewer(next.token, current?.token ?? null)) {
      if (current?.token.raw !== next.token.raw || current.skewKnown || !next.skewKnown) return false
      this.held = next // same token, now with a measured clock offset
      this.suspect = false
      this.publish()
      return false
    }
    this.held = next
    this.suspect = suspect
    this.signedOut = false
    this.backoff = null
    if (this.remote && source !== 'refresh') this.remote = null
    this.publish({ error: null, lastUpdate: { source, tabId: from, at: this.#clock.now() } })
    return true
  }

  /**
   * Adopts a token found without a clock measurement (cookie, app-supplied, `setToken`). Throws
   * `TokenError` when malformed. A later cookie that contradicts the clock is left alone: the tab
   * that refreshed it sends it over the channel with a measured offset.
   */
  adoptFound(raw: string, source: TokenSource): boolean {
    const found = fromUnmeasured(decodeSessionToken(raw), this.#clock.now())
    if (found.suspect && source === 'cookie') return false
    return this.adopt(found, source, this.tabId, found.suspect)
  }

  /** Adopts the token in the cookie if it is newer than ours (another library or the server set it). */
  readCookie(): void {
    if (this.options.initialToken !== undefined) return
    const raw = this.#env.readCookie(this.options.cookieName)
    if (raw === null || raw === this.held?.token.raw) return
    try {
      this.adoptFound(raw, this.loading ? 'startup' : 'cookie')
    } catch (error) {
      if (this.held === null) this.publish({ error: error as SessionKeeperError })
    }
  }

  /** Re-reads the clock and refreshes if due: on timers, page events and messages. */
  check(): void {
    if (!this.#running || this.loading) return
    this.readCookie()
    const now = this.#clock.now()
    if (this.remote && now - this.remote.since > this.options.lockTimeoutMs) this.remote = null
    if (this.isDue(now) && this.#env.isOnline() && now >= this.retryAt) void this.refresh('scheduled')
    this.publish()
  }

  /** Runs one refresh under the lock unless one is already running in this tab. */
  refresh(trigger: Trigger): Promise<void> {
    if (this.#inflight) return this.#inflight
    const start = this.held
    if (start === null || this.signedOut) return Promise.resolve()
    this.#inflight = this.#refreshUnderLock(trigger, start)
      .catch((error: unknown) => {
        // Our lock was stolen while we were frozen: the callback ran on, nothing to report.
        if ((error as { name?: string })?.name === 'AbortError') return
        queueMicrotask(() => {
          throw error // a bug: surface it to the page's error reporting, keep the agent running
        })
      })
      .finally(() => {
        this.#inflight = null
        this.publish()
      })
    this.publish()
    return this.#inflight
  }

  async #refreshUnderLock(trigger: Trigger, start: HeldToken): Promise<void> {
    const locks = this.locks!
    const name = `session-keeper:${this.options.channelName}:refresh`
    const progressSince = (since: number) => this.remote !== null && this.remote.since > since
    await withLock(locks, name, () => this.#lockWaitMs(), this.#clock, async (grant) => {
      if (grant === 'stolen') this.stats.lockSteals++
      if (!this.running) return
      this.readCookie()
      if (!this.#stillNeeded(trigger, start)) return
      if (grant === 'waited' || (grant === 'free' && this.remote)) {
        // Another tab held the lock: its outcome is on its way over the channel (nothing orders
        // a lock grant after a message), unless it died. Wait a moment for it.
        await this.changes.until(() => !this.#stillNeeded(trigger, start) || this.#clock.now() < this.retryAt, this.options.handoffWaitMs)
        this.remote = null
        if (!this.#stillNeeded(trigger, start)) return
      }
      if (trigger !== 'force' && this.#clock.now() < this.retryAt) return
      if (!this.#env.isOnline()) return
      await attempt(this, this.held!)
    }, progressSince)
  }

  #stillNeeded(trigger: Trigger, start: HeldToken): boolean {
    if (!this.#running || this.signedOut || this.held === null) return false
    if (trigger === 'force') return this.held.token.raw === start.token.raw
    return this.isDue()
  }

  /** Bounded so that, behind a frozen holder, 5 s remain for our own request before expiry. */
  #lockWaitMs(): number {
    const left = this.held ? localExpiry(this.held) - this.#clock.now() - 5000 : Infinity
    // Jitter, so that tabs behind the same frozen holder do not all steal at once.
    return Math.max(250, Math.min(this.options.lockTimeoutMs, left)) + Math.round(this.options.random() * 250)
  }

  /** An explicit `setToken` for a session that ended here revives it. */
  forgetEnded(sessionId: string): void {
    if (this.endedSessionId === sessionId) this.endedSessionId = null
  }

  /** Ends the session in this tab, and in every tab when `broadcast`. */
  endSession(error: RefreshError | null, broadcast: boolean): void {
    const sessionId = this.held?.token.sessionId ?? null
    if (sessionId) this.endedSessionId = sessionId
    this.held = null
    this.signedOut = true
    this.suspect = false
    this.backoff = null
    this.remote = null
    if (this.options.initialToken === undefined) this.#env.deleteCookie(this.options.cookieName)
    if (broadcast) this.channel?.post({ type: 'signed-out', sessionId, rejected: error !== null })
    this.publish({ error })
  }

  /** Recomputes the state, notifies subscribers and waiters, and re-aims the timer. */
  publish(patch: Partial<SessionState> = {}): void {
    const now = this.#clock.now()
    const { status, expiresAt, refreshAt } = deriveView(this.#facts(), now)
    const token = this.held?.token
    this.store.set({
      status, token: token?.raw ?? null, sessionId: token?.sessionId ?? null, userId: token?.userId ?? null,
      expiresAt, online: this.#env.isOnline(), refreshAt: refreshAt === Infinity ? null : refreshAt, ...patch,
    })
    this.#schedule(now, refreshAt, expiresAt)
    this.changes.notify()
  }

  /** One timer: at the refresh time (later in tabs that are not in front), or at expiry. */
  #schedule(now: number, refreshAt: number | null, expiresAt: number | null): void {
    if (!this.#running || this.loading || this.#inflight || refreshAt === null || expiresAt === null) {
      return this.#timer.cancel()
    }
    const delay = this.#env.isVisible() ? (this.#env.hasFocus() ? 0 : 250) : 1000
    let target = this.#env.isOnline() ? refreshAt + delay : Infinity
    if (now < expiresAt) target = Math.min(target, expiresAt)
    if (target === Infinity) this.#timer.cancel()
    else this.#timer.at(target)
  }
}
