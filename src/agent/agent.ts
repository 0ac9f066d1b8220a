import { Changes } from '../core/changes.js'
import { sleep } from '../core/clock.js'
import { WakeTimer } from '../core/scheduler.js'
import { Store } from '../core/store.js'
import { localExpiry, refreshMarginMs, type HeldToken } from '../core/timing.js'
import { decodeSessionToken } from '../core/token.js'
import { MAX_HOLD_MS, type Transport } from '../core/transport.js'
import type { AnySessionKeeperError } from '../errors/AnySessionKeeperError.js'
import { RefreshError } from '../errors/RefreshError.js'
import { TabChannel } from '../tabs/channel.js'
import { ChannelLock } from '../tabs/channelLock.js'
import { browserLocks, type LockGrant, type LockManagerLike, soloLocks, withLock } from '../tabs/locks.js'
import type { TabMessage } from '../tabs/protocol.js'
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
import { eventOf } from './receive.js'
import {
  type AgentState,
  failedAttempts,
  INITIAL_AGENT_STATE,
  isDue,
  isUsable,
  publicState,
  recoveryError,
  retryAt,
  type SessionState,
  type SessionStats,
} from './state.js'
import { type AgentEvent, type Effect, type Trigger, transition, type TransitionInput, wakeAt } from './transition.js'

/**
 * One tab's agent: it holds the state, feeds every input (timer, page, channel, answers, the
 * app's calls) through `transition` as an event, stores the result with one write, and runs the
 * effects. It owns the resources the effects need: the channel, the lock, the timer, the run in
 * flight. The run (`runRefresh`, below: the lock, the request, its outcome) reads the state and
 * reports events through the agent; it never writes the state.
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

// One refresh run, under the cross-tab lock: started by the agent, reporting to it.

/** What a refresh run needs besides its tab: the lock, the request, and the options that time them. */
interface RunDeps {
  options: ResolvedOptions
  locks: LockManagerLike
  transport: Transport
  tabId: string
}

/** How a run sees its tab and reports to it: the state as it is now, and events. */
interface RunHost {
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
async function runRefresh(deps: RunDeps, host: RunHost, trigger: Trigger, start: HeldToken, signal?: AbortSignal): Promise<void> {
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
