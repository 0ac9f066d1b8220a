import { Changes } from '../core/changes.js'
import type { Clock } from '../core/clock.js'
import type { Environment } from '../core/environment.js'
import { WakeTimer } from '../core/scheduler.js'
import { Store } from '../core/store.js'
import { localExpiry, type HeldToken } from '../core/timing.js'
import { isNewer } from '../core/token.js'
import type { Transport } from '../core/transport.js'
import type { RefreshError } from '../errors/RefreshError.js'
import type { AnySessionKeeperError } from '../errors/AnySessionKeeperError.js'
import type { TabChannel } from '../tabs/channel.js'
import type { LockManagerLike } from '../tabs/locks.js'
import { DELAYS } from './delays.js'
import type { AgentEvent } from './events.js'
import type { ResolvedOptions } from './options.js'
import { isAuthoritative, readCookie } from './adoption.js'
import { TabView } from './view.js'
import { runRefresh, type Trigger } from './refreshRun.js'
import {
  deriveView,
  dueAt,
  LOADING_STATE,
  newStats,
  type AgentFacts,
  type SessionState,
  type SessionStats,
  type TokenSource,
} from './state.js'

/**
 * One tab's view of the session: the token held, when to refresh it, and the refresh itself
 * under the cross-tab lock. Everything that changes what the tab knows arrives as an
 * `AgentEvent` and goes through `apply`, the only writer of its state. Tabs agree through
 * messages; every decision is re-made from the token and the clock, so a lost or late message
 * costs at most one extra request.
 */
export class Agent extends TabView {
  readonly store: Store<SessionState>
  readonly stats: SessionStats = newStats()
  #inflight: Promise<void> | null = null
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
    super()
    this.#clock = options.clock
    this.#env = options.environment
    this.changes = new Changes(this.#clock)
    this.store = new Store<SessionState>({ ...LOADING_STATE, online: this.#env.isOnline(), tabId })
    this.#timer = new WakeTimer(this.#clock, (lateByMs) => {
      this.stats.timerCallbacks++
      if (lateByMs > DELAYS.lateTimerMs) this.stats.lateTimers++
      this.check()
    })
  }

  get lastError(): AnySessionKeeperError | null {
    return this.store.get().error
  }

  setRunning(running: boolean): void {
    this._running = running
    if (running) this._loading = true
    else this.#timer.cancel()
    this.changes.notify()
  }

  /** The start-up wait for other tabs is over: refreshes may begin. */
  finishLoading(): void {
    this._loading = false
    this.check()
  }

  /** A token that will still be valid when the caller uses it (a few hundred ms from now). */
  isUsable(now = this.#clock.now()): boolean {
    return this._held !== null && now < localExpiry(this._held) - DELAYS.minValidityMs
  }

  isDue(now = this.#clock.now()): boolean {
    const due = dueAt(this.#facts(), now)
    return due !== null && now >= due
  }

  #facts(): AgentFacts {
    return {
      held: this._held,
      signedOut: this._signedOut,
      loading: this._loading,
      suspect: this._suspect,
      busy: this.#inflight !== null || this._remote !== null,
      retryAt: this.retryAt,
      configuredMarginMs: this.options.refreshMarginMs,
      atExpiry: this._atExpiry,
      recovery: this.recoveryError !== null,
    }
  }

  /** Applies one event: the only place where this tab's state changes. */
  apply(event: AgentEvent): void {
    const now = this.#clock.now()
    switch (event.type) {
      case 'token':
        return this.#adopt(event.held, event.source, event.from, event.suspect ?? false)
      case 'no-progress':
        this._backoff = { attempt: event.attempt, retryAt: event.retryAt, error: null }
        return this.publish()
      case 'clock-measured':
        if (this._held?.token.raw === event.held.token.raw) this._held = event.held
        this._suspect = false
        return this.publish()
      case 'refresh-failed':
        if (event.local) this.stats.refreshFailures++
        this._remote = null
        this._backoff = { attempt: event.attempt, retryAt: event.retryAt, error: event.error }
        if (event.local && this._held) {
          const { code, message } = event.error
          const retryAt = Number.isFinite(event.retryAt) ? event.retryAt : null
          this.channel?.post({
            type: 'refresh-failed',
            sessionId: this._held.token.sessionId,
            code,
            message: message.slice(0, 500),
            attempt: event.attempt,
            retryAt,
          })
        }
        return this.publish({ error: event.error })
      case 'recovery':
        if (event.local) this.stats.refreshFailures++
        if (this._held?.token.raw !== event.tokenRaw || this.recoveryError) return
        this._recovery = { tokenRaw: event.tokenRaw, error: event.error }
        this._remote = null
        this._backoff = null
        if (event.local) {
          const reason = event.error.reason ?? 'unknown'
          this.channel?.post({ type: 'recovery', sessionId: this._held.token.sessionId, token: event.tokenRaw, reason })
        }
        this.publish({ error: event.error })
        this.options.onRecoveryRequired?.(event.error)
        return this.#env.dispatch?.('session-keeper:recovery', { error: event.error, state: this.store.get() })
      case 'refresh-at-expiry':
        if (event.local) this.stats.refreshFailures++
        this._remote = null
        this._backoff = event.retryAt > now ? { attempt: 0, retryAt: event.retryAt, error: null } : this._backoff
        if (!this._atExpiry) {
          this._atExpiry = true
          if (event.local) this.channel?.post({ type: 'mode', refreshAtExpiry: true, retryAt: event.retryAt })
        }
        return this.publish()
      case 'session-ended':
        return this.#endSession(event.error, event.broadcast)
      case 'remote-refreshing':
        this._remote = { from: event.from, since: now }
        this.publish()
        // Stand by behind the refresher: if it dies mid-refresh, the lock passes to us.
        return void this.refresh('standby')
      case 'error':
        return this.publish({ error: event.error })
      case 'remote-done':
        this._remote = null
        return
      case 'ignored':
        this.stats.messagesIgnored++
        return
    }
  }

  /**
   * Adopts a token if it is newer than the one held (or a session switch already vetted). This
   * tab's own refresh answer is authoritative over anything learned from the channel.
   */
  #adopt(next: HeldToken, source: TokenSource, from: string, suspect: boolean): void {
    const current = this._held
    if (next.token.sessionId === this._endedSessionId) return
    if (from === this._remote?.from) this._remote = null
    const same = current?.token.raw === next.token.raw
    const authoritative = source === 'refresh' && current !== null && isAuthoritative(next, current, this._heldSource)
    if (same || (!authoritative && !isNewer(next.token, current?.token ?? null))) {
      // The same token, now with a (better) clock measurement: keep the token, take the clock.
      if (same && next.skewKnown && (!current!.skewKnown || source === 'refresh')) {
        this._held = next
        this._suspect = false
      } else if (source === 'tab' && !same) this.stats.messagesIgnored++
      if (source === 'refresh' && !same) this._backoff = null
      return this.publish(source === 'refresh' ? { error: null } : {})
    }
    if (source === 'tab') this.stats.tokensFromTabs++
    this._held = next
    this._heldSource = source
    this._suspect = suspect
    this._signedOut = false
    this._backoff = null
    this._recovery = null
    if (this._remote && source !== 'refresh') this._remote = null
    this.publish({ error: null, lastUpdate: { source, tabId: from, at: this.#clock.now() } })
  }

  /** Re-reads the clock and refreshes if due: on timers, page events and messages. */
  check(): void {
    if (!this._running || this._loading) return
    // While a refresh is in flight here or in another tab, the cookie its answer sets is not
    // news: the token comes with its clock measurement, as an answer or over the channel.
    if (!this.#inflight && !this._remote) readCookie(this)
    const now = this.#clock.now()
    if (this._remote && now - this._remote.since > this.options.lockTimeoutMs) this._remote = null
    if (this.isDue(now) && this.#env.isOnline() && now >= this.retryAt) void this.refresh('scheduled')
    this.publish()
  }

  /** Runs one refresh under the lock unless one is already running in this tab. */
  refresh(trigger: Trigger): Promise<void> {
    if (this.#inflight) return this.#inflight
    const start = this._held
    if (start === null || this._signedOut || this.recoveryError) return Promise.resolve()
    this.#inflight = runRefresh(this, trigger, start)
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

  /** An explicit `setToken` for a session that ended here revives it. */
  forgetEnded(sessionId: string): void {
    if (this._endedSessionId === sessionId) this._endedSessionId = null
  }

  /** Ends the session in this tab, and in every tab when `broadcast`. */
  #endSession(error: RefreshError | null, broadcast: boolean): void {
    if (this._signedOut && this._held === null && !broadcast) return
    const sessionId = this._held?.token.sessionId ?? null
    if (sessionId) this._endedSessionId = sessionId
    this._held = null
    this._heldSource = null
    this._signedOut = true
    this._suspect = false
    this._backoff = null
    this._remote = null
    this._recovery = null
    if (this.options.initialToken === undefined) this.#env.deleteCookie(this.options.cookieName)
    if (broadcast) this.channel?.post({ type: 'signed-out', sessionId, rejected: error !== null })
    this.publish({ error })
  }

  /** Recomputes the state, notifies subscribers and waiters, and re-aims the timer. */
  publish(patch: Partial<SessionState> = {}): void {
    const now = this.#clock.now()
    const { status, expiresAt, refreshAt } = deriveView(this.#facts(), now)
    const token = this._held?.token
    this.store.set({
      status,
      token: token?.raw ?? null,
      sessionId: token?.sessionId ?? null,
      userId: token?.userId ?? null,
      expiresAt,
      online: this.#env.isOnline(),
      refreshAt: refreshAt === Infinity ? null : refreshAt,
      ...patch,
    })
    this.#schedule(now, refreshAt, expiresAt)
    this.changes.notify()
  }

  /** One timer: at the refresh time (later in tabs that are not in front), or at expiry. */
  #schedule(now: number, refreshAt: number | null, expiresAt: number | null): void {
    if (!this._running || this._loading || this.#inflight || refreshAt === null || expiresAt === null) {
      return this.#timer.cancel()
    }
    const delay = this.#env.isVisible() ? (this.#env.hasFocus() ? 0 : DELAYS.visibleTabMs) : DELAYS.hiddenTabMs
    let target = this.#env.isOnline() ? refreshAt + delay : Infinity
    if (now < expiresAt) target = Math.min(target, expiresAt)
    if (target === Infinity) this.#timer.cancel()
    else this.#timer.at(target)
  }
}
