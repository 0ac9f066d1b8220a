import { Changes } from '../core/changes.js'
import { WakeTimer } from '../core/scheduler.js'
import { Store } from '../core/store.js'
import { decodeSessionToken } from '../core/token.js'
import type { Transport } from '../core/transport.js'
import type { AnySessionKeeperError } from '../errors/AnySessionKeeperError.js'
import { TabChannel } from '../tabs/channel.js'
import { ChannelLock } from '../tabs/channelLock.js'
import { browserLocks, type LockManagerLike, soloLocks } from '../tabs/locks.js'
import type { TabMessage } from '../tabs/protocol.js'
import { cookieValue, type ResolvedOptions } from './options.js'
import { eventOf } from './receive.js'
import { runRefresh } from './refreshRun.js'
import { type AgentState, INITIAL_AGENT_STATE, isDue, isUsable, publicState, type SessionState, type SessionStats } from './state.js'
import { type AgentEvent, type Effect, type Trigger, transition, type TransitionInput, wakeAt } from './transition.js'

/**
 * One tab's agent: it holds the state, feeds every input (timer, page, channel, answers, the
 * app's calls) through `transition` as an event, stores the result with one write, and runs the
 * effects. It owns the resources the effects need: the channel, the lock, the timer, the run in
 * flight.
 */
export class Agent {
  #state: AgentState = INITIAL_AGENT_STATE
  readonly store: Store<SessionState>
  /** Wakes `getToken()` and the handoff waits on every state change. */
  readonly changes: Changes
  readonly #timer: WakeTimer
  #channel: TabChannel | null = null
  #locks: LockManagerLike = soloLocks
  #run: Promise<void> | null = null
  /** Aborts the run in flight: its lock wait, its lock and its request (the page goes away). */
  #runAbort: AbortController | null = null
  /** A run asked the other tabs to speak (`ping`) and none has yet. */
  #awaitingWord = false
  #teardown: (() => void) | null = null
  /** Settles when the start-up wait for other tabs is over. */
  ready: Promise<void> = Promise.resolve()

  constructor(
    readonly options: ResolvedOptions,
    readonly tabId: string,
    readonly transport: Transport,
  ) {
    this.changes = new Changes(options.clock)
    this.store = new Store<SessionState>(publicState(this.#state, options.clock.now(), undefined, options.environment.isOnline(), tabId))
    this.#timer = new WakeTimer(options.clock, (lateByMs) => this.dispatch({ type: 'tick', cookie: cookieValue(options), lateByMs }))
  }

  get state(): AgentState {
    return this.#state
  }

  /** The public state; one whose token has expired since is brought up to date first (timers run late). */
  publicState(): SessionState {
    const current = this.store.get()
    if (current.token !== null && current.expiresAt !== null && this.options.clock.now() >= current.expiresAt) this.check()
    return this.store.get()
  }

  get stats(): SessionStats {
    const { stats } = this.#state
    return { ...stats, messagesIgnored: stats.messagesIgnored + (this.#channel?.ignored ?? 0) }
  }

  /** The one way in: the event's transition is stored, then its effects run. */
  dispatch(event: AgentEvent): void {
    const input = this.#input()
    const { state, effects } = transition(this.#state, event, input)
    const changed = state !== this.#state
    this.#state = state
    // What the other tabs are told goes out first: they work on it while this tab's subscribers run.
    for (const effect of effects) if (effect.type === 'post') this.#perform(effect)
    this.store.set(publicState(state, input.now, input.refreshMarginMs, input.online, this.tabId))
    for (const effect of effects) if (effect.type !== 'post') this.#perform(effect)
    // The timer follows the state (the latest, should an effect have dispatched meanwhile).
    const at = wakeAt(this.#state, this.#input())
    if (at === null) this.#timer.cancel()
    else this.#timer.at(at)
    if (changed) this.changes.notify()
  }

  #input(): TransitionInput {
    const { clock, environment, refreshMarginMs, lockTimeoutMs, initialToken } = this.options
    return {
      now: clock.now(),
      online: environment.isOnline(),
      visible: environment.isVisible(),
      focused: environment.hasFocus(),
      tabId: this.tabId,
      refreshMarginMs,
      lockTimeoutMs,
      appSuppliesTokens: initialToken !== undefined,
    }
  }

  #perform(effect: Effect): void {
    const { options } = this
    switch (effect.type) {
      case 'post':
        return this.#channel?.post(effect.message)
      case 'start-refresh':
        return this.#startRun(effect.trigger)
      case 'tick-after':
        return void options.clock.setTimeout(() => this.check(), effect.ms)
      case 'call-on-recovery':
        return options.onRecoveryRequired?.(effect.error)
      case 'dispatch':
        return options.environment.dispatch?.(effect.name, { error: effect.error, state: this.store.get() })
      case 'delete-cookie':
        return options.environment.deleteCookie(options.cookieName)
    }
  }

  /** Opens the channel and the lock, listens to the page, reads the first token, greets the tabs. */
  start(): void {
    if (this.#teardown) return
    const o = this.options
    const channel = this.#openChannel()
    const offPage = o.environment.listen((reason) => {
      // A page put in the back/forward cache closes its channel (a message for a cached page
      // evicts it from the cache), lets go of the refresh lock and of its request (a frozen
      // holder would make the other tabs wait, and Chromium evicts a cached page whose lock is
      // wanted) and starts no refresh. Restored, it opens the channel again and asks the others:
      // it catches up by itself, with the cookie and their answers, without a request of its own.
      if (reason === 'pagehide') {
        this.dispatch({ type: 'away', away: true })
        this.#runAbort?.abort()
        return this.#closeChannel()
      }
      if (reason === 'pageshow') {
        if (!this.#channel) this.#openChannel()?.post({ type: 'hello' })
        this.dispatch({ type: 'away', away: false })
      }
      // A changed cookie is read a moment later (`cookie-changed`), not now: every refresh changes
      // it in every tab at once, and reading it costs each tab a round trip to the browser.
      if (reason === 'cookie') this.dispatch({ type: 'cookie-changed' })
      else this.check()
    }, o.cookieName)
    this.#teardown = () => {
      offPage()
      this.#closeChannel()
      this.dispatch({ type: 'stop' })
    }
    this.dispatch(this.#startEvent())
    // Without a fresh token of our own, give the other tabs a moment to share theirs.
    const fresh = () => isUsable(this.#state, o.clock.now()) && !isDue(this.#state, o.clock.now(), o.refreshMarginMs)
    const wait = channel && !fresh() ? this.changes.until(fresh, o.helloWaitMs) : Promise.resolve()
    this.ready = wait.then(() => this.dispatch({ type: 'loaded', cookie: cookieValue(o) }))
  }

  #openChannel(): TabChannel | null {
    const o = this.options
    const opened = o.channel(`session-keeper:v1:${o.channelName}`)
    const channel = opened ? new TabChannel(opened, this.tabId) : null
    this.#channel = channel
    const chosen = o.locks === undefined ? browserLocks() : o.locks
    this.#locks = chosen ?? (channel ? new ChannelLock(channel, o.clock, o.random) : soloLocks)
    channel?.on((message) => this.#receive(message))
    return channel
  }

  #closeChannel(): void {
    this.#channel?.close()
    this.#channel = null
  }

  #startEvent(): AgentEvent {
    const { initialToken } = this.options
    if (initialToken === undefined) return { type: 'start', token: cookieValue(this.options) }
    try {
      const raw = typeof initialToken === 'function' ? initialToken() : initialToken
      return { type: 'start', token: raw ?? null }
    } catch (error) {
      return { type: 'start', token: null, error: error as AnySessionKeeperError }
    }
  }

  stop(): void {
    this.#teardown?.()
    this.#teardown = null
  }

  /** Re-reads the clock and the cookie, and refreshes if due. */
  check(): void {
    this.dispatch({ type: 'tick', cookie: cookieValue(this.options) })
  }

  /** Asks for a refresh; resolves when the run in this tab (if any) is over. */
  refresh(trigger: Trigger): Promise<void> {
    this.dispatch({ type: 'refresh', trigger })
    return this.#run ?? Promise.resolve()
  }

  #startRun(trigger: Trigger): void {
    const deps = { options: this.options, locks: this.#locks, transport: this.transport, tabId: this.tabId }
    const host = {
      state: () => this.#state,
      dispatch: (event: AgentEvent) => this.dispatch(event),
      until: (done: () => boolean, ms: number) => this.changes.until(done, ms),
      ping: () => {
        this.#awaitingWord = true
        this.#channel?.post({ type: 'hello' })
      },
      heard: () => !this.#awaitingWord,
    }
    const abort = new AbortController()
    this.#runAbort = abort
    this.#run = runRefresh(deps, host, trigger, this.#state.held!, abort.signal)
      .catch((error: unknown) => {
        // Our lock was stolen while we were frozen, or the page went away: nothing to report.
        if ((error as { name?: string })?.name === 'AbortError') return
        queueMicrotask(() => {
          throw error // a bug: surface it to the page's error reporting, keep the agent running
        })
      })
      .finally(() => {
        this.#run = this.#runAbort = null
        this.dispatch({ type: 'refresh-ended' })
      })
  }

  /** A validated message from another tab, read as an event. */
  #receive(message: TabMessage): void {
    if (!this.#state.running || message.type === 'lock') return // `lock`: the fallback lock's own
    const o = this.options
    // A run handing over (`ping`) waits for any other tab to speak: it wakes on this.
    if (this.#awaitingWord) {
      this.#awaitingWord = false
      this.changes.notify()
    }
    this.dispatch(
      eventOf(message, this.#state, {
        now: o.clock.now(),
        retryMaxDelayMs: o.retryMaxDelayMs,
        acceptOtherSessions: o.acceptOtherSessionsFromTabs,
        cookieSessionId: () => sessionOf(cookieValue(o)),
      }),
    )
  }
}

function sessionOf(raw: string | null): string | null {
  try {
    return raw === null ? null : decodeSessionToken(raw).sessionId
  } catch {
    return null
  }
}
