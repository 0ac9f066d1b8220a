import { fromUnmeasured, type HeldToken } from '../core/timing.js'
import { decodeSessionToken, isNewer } from '../core/token.js'
import type { AnySessionKeeperError } from '../errors/AnySessionKeeperError.js'
import type { RefreshError } from '../errors/RefreshError.js'
import type { LockGrant } from '../tabs/locks.js'
import type { Outgoing } from '../tabs/protocol.js'
import { CHANNEL_FUTURE_TOLERANCE_MS, COOKIE_SETTLE_MS, HIDDEN_TAB_MS, LATE_TIMER_MS, VISIBLE_TAB_MS } from './delays.js'
import { type AgentState, deriveView, isDue, isUsable, recoveryError, retryAt, type SessionStats, type TokenSource } from './state.js'

export type Trigger = 'scheduled' | 'standby' | 'demand' | 'force'

/**
 * Everything that can change what a tab knows, as data: the outcome of its own request, a message
 * from another tab, the page, the timer, or a call of the app.
 */
export type AgentEvent =
  /** `token`: the cookie's value, or the app's `initialToken`; `error`: the latter threw. */
  | { type: 'start'; token: string | null; error?: AnySessionKeeperError }
  | { type: 'stop' }
  /** The start-up wait for other tabs is over: refreshes may begin. */
  | { type: 'loaded'; cookie: string | null }
  /**
   * Look again: the timer fired (`lateByMs`), or the page woke (visible, focused, online, shown
   * again …). `cookie`: its value now.
   */
  | { type: 'tick'; cookie: string | null; lateByMs?: number }
  /** The page goes away (pagehide: into the back/forward cache, or unloading) or shows again (pageshow). */
  | { type: 'away'; away: boolean }
  /** The session cookie changed: it is looked at a moment later, once the channel had its say. */
  | { type: 'cookie-changed' }
  /** A token handed over without a clock measurement: at start-up or by `setToken`. */
  | { type: 'found'; raw: string; source: 'startup' | 'setToken' }
  /** The cookie's value, read by a refresh run once it holds the lock. */
  | { type: 'cookie-read'; raw: string }
  /** The app asks for a refresh (`getToken()` waiting, or forced). */
  | { type: 'refresh'; trigger: Trigger }
  | { type: 'refresh-ended' }
  | { type: 'lock-granted'; grant: LockGrant }
  /** The tab holding the lock sends its request. */
  | { type: 'request-sent' }
  /** A token to adopt if it is newer (or authoritative: this tab's own refresh answer). */
  | { type: 'token'; held: HeldToken; source: TokenSource; from: string; suspect?: boolean }
  /** A refresh failed; no tab retries before `retryAt` (Infinity: not until asked). */
  | { type: 'refresh-failed'; error: RefreshError; attempt: number; retryAt: number; local: boolean }
  /** The proxy answered 409 for this token: no tab asks for it again. */
  | { type: 'recovery'; tokenRaw: string; error: RefreshError; local: boolean }
  /** The proxy refuses tokens before expiry: refresh at expiry from now on, not before `retryAt`. */
  | { type: 'refresh-at-expiry'; retryAt: number; holdMs: number; local: boolean }
  /** The proxy answered with the very token sent (a replay gone wrong): a success, retried only after `retryAt`. */
  | { type: 'no-progress'; attempt: number; retryAt: number }
  /** The same token, with a clock offset measured from the proxy's `Date`. */
  | { type: 'clock-measured'; held: HeldToken }
  /** The session ended: here only, or in every tab (`broadcast`: `signOut()`, or the proxy's 401). */
  | { type: 'session-ended'; error: RefreshError | null; broadcast: boolean }
  /** Another tab holds the refresh lock and sent its request. */
  | { type: 'remote-refreshing'; from: string }
  /** Whatever another tab announced is over, or was waited for long enough. */
  | { type: 'remote-done' }
  /** A new tab asks for the token. */
  | { type: 'hello' }
  /** A message that was read and dropped: malformed, stale, foreign or out of bounds. */
  | { type: 'ignored' }

/** What the owner of the state does after a transition, in this order. */
export type Effect =
  | { type: 'post'; message: Outgoing }
  | { type: 'start-refresh'; trigger: Trigger }
  /** Look again (`tick`) after `ms`: a changed cookie, once the channel has had its say. */
  | { type: 'tick-after'; ms: number }
  | { type: 'call-on-recovery'; error: RefreshError }
  | { type: 'dispatch'; name: 'session-keeper:recovery'; error: RefreshError }
  | { type: 'delete-cookie' }

/** What a transition reads besides the state and the event: the clock, the page and the options. */
export interface TransitionInput {
  now: number
  online: boolean
  visible: boolean
  focused: boolean
  tabId: string
  refreshMarginMs: number | undefined
  lockTimeoutMs: number
  /** The app supplies tokens (`initialToken`): the cookie is neither read nor deleted. */
  appSuppliesTokens: boolean
}

export interface Transition {
  state: AgentState
  effects: Effect[]
}

/**
 * The agent's one transition (pure): the next state and the effects to run, for one event. The
 * `Agent` stores the state, runs the effects, and aims its one timer at `wakeAt(state)`; nothing
 * else writes its state. The state given is never modified: the transition works on a copy, and
 * answers the very state given when nothing changed.
 */
export function transition(state: AgentState, event: AgentEvent, input: TransitionInput): Transition {
  const s: Draft = { ...state, stats: { ...state.stats } }
  const effects: Effect[] = []
  const { now } = input
  const post = (message: Outgoing) => void effects.push({ type: 'post', message })

  /** Posts the token held, with its clock measurement, to the other tabs. */
  const share = (cause: 'refresh' | 'reply' | 'set') => {
    const held = s.held
    if (!held) return
    const { token, offsetMs, offsetHighMs, skewKnown } = held
    post({ type: 'token', token: token.raw, offsetMs, ...(offsetHighMs !== undefined ? { offsetHighMs } : {}), skewKnown, cause })
  }

  /** One refresh run at a time in this tab, and only for a token that may be refreshed. */
  const startRefresh = (trigger: Trigger) => {
    if (s.refreshing || s.away || !s.running || s.held === null || s.signedOut || recoveryError(s)) return
    s.refreshing = true
    effects.push({ type: 'start-refresh', trigger })
  }

  /**
   * Adopts a token if it is newer than the one held (or a session switch already vetted). This
   * tab's own refresh answer is authoritative over anything learned from the channel.
   */
  const adopt = (next: HeldToken, source: TokenSource, from: string, suspect: boolean) => {
    const current = s.held
    if (next.token.sessionId === s.endedSessionId) return
    if (from === s.remote?.from) s.remote = null
    const same = current?.token.raw === next.token.raw
    const authoritative = source === 'refresh' && current !== null && isAuthoritative(next, current, s.heldSource)
    if (same || (!authoritative && !isNewer(next.token, current?.token ?? null))) {
      // The same token, now with a (better) clock measurement: keep the token, take the clock.
      if (same && next.skewKnown && (!current!.skewKnown || source === 'refresh')) {
        s.held = next
        s.suspect = false
      } else if (source === 'tab' && !same) s.stats.messagesIgnored++
      if (source === 'refresh' && !same) s.backoff = null
      if (source === 'refresh') s.error = null
      return
    }
    if (source === 'tab') s.stats.tokensFromTabs++
    Object.assign(s, { held: next, heldSource: source, suspect, signedOut: false, backoff: null, recovery: null, error: null })
    s.lastUpdate = { source, tabId: from, at: now }
    if (source !== 'refresh') s.remote = null
  }

  /**
   * Adopts a token found without a clock measurement (cookie, app-supplied, `setToken`); answers
   * whether it did. Throws `TokenError` when malformed. A later cookie that contradicts the clock
   * is left alone: the tab that refreshed it sends it over the channel with a measured offset.
   */
  const adoptFound = (raw: string, source: TokenSource) => {
    const found = fromUnmeasured(decodeSessionToken(raw), now)
    if (found.suspect && source === 'cookie') return false
    const before = s.held
    adopt(found, source, input.tabId, found.suspect)
    return s.held !== before && s.held?.token.raw === raw
  }

  /** A token handed over at start-up or by `setToken`; a malformed one is an error, nothing else. */
  const found = (raw: string, source: 'startup' | 'setToken') => {
    try {
      // An explicit `setToken` for a session that ended here revives it.
      if (source === 'setToken' && s.endedSessionId === decodeSessionToken(raw).sessionId) s.endedSessionId = null
      if (adoptFound(raw, source) && source === 'setToken') share('set')
    } catch (error) {
      s.error = error as AnySessionKeeperError
    }
  }

  /**
   * Adopts the token in the cookie if it is newer than ours (a sign-in, the proxy, another
   * library). A malformed cookie is an error only while no token is held.
   */
  const readCookie = (raw: string) => {
    if (raw === s.held?.token.raw) return
    const sessionBefore = s.held?.token.sessionId
    try {
      const adopted = adoptFound(raw, s.loading ? 'startup' : 'cookie')
      // A sign-in as someone else in this browser: tell the other tabs now (their cookie agrees).
      if (adopted && !s.loading && sessionBefore !== undefined && sessionBefore !== s.held!.token.sessionId) share('set')
    } catch (error) {
      if (s.held === null) s.error = error as AnySessionKeeperError
    }
  }

  /** Re-reads the clock (and the cookie) and refreshes if due. */
  const tick = (cookie: string | null) => {
    if (!s.running || s.loading) return
    // While a refresh is in flight here or in another tab, the cookie its answer sets is not
    // news: the token comes with its clock measurement, as an answer or over the channel.
    if (!s.refreshing && !s.remote && cookie !== null) readCookie(cookie)
    if (s.remote && now - s.remote.since > input.lockTimeoutMs) s.remote = null
    if (isDue(s, now, input.refreshMarginMs) && input.online && now >= retryAt(s)) startRefresh('scheduled')
  }

  /** Ends the session in this tab, and in every tab when `broadcast`. */
  const endSession = (error: RefreshError | null, broadcast: boolean) => {
    if (s.signedOut && s.held === null && !broadcast) return
    const sessionId = s.held?.token.sessionId ?? null
    if (sessionId) s.endedSessionId = sessionId
    Object.assign(s, { held: null, heldSource: null, signedOut: true, suspect: false, backoff: null, remote: null, recovery: null, error })
    if (!input.appSuppliesTokens) effects.push({ type: 'delete-cookie' })
    if (broadcast) post({ type: 'signed-out', sessionId, rejected: error !== null })
  }

  switch (event.type) {
    case 'start':
      Object.assign(s, { running: true, loading: true })
      if (event.error) s.error = event.error
      if (event.token !== null) found(event.token, 'startup')
      // Ask the other tabs for their token; without a fresh one of our own, we wait for it.
      post({ type: 'hello' })
      break
    case 'stop':
      s.running = false
      break
    case 'loaded':
      s.loading = false
      tick(event.cookie)
      break
    case 'tick':
      if (event.lateByMs !== undefined) {
        s.stats.timerCallbacks++
        if (event.lateByMs > LATE_TIMER_MS) s.stats.lateTimers++
      }
      tick(event.cookie)
      break
    case 'away':
      s.away = event.away
      break
    case 'cookie-changed':
      effects.push({ type: 'tick-after', ms: COOKIE_SETTLE_MS })
      break
    case 'found':
      found(event.raw, event.source)
      break
    case 'cookie-read':
      if (s.running) readCookie(event.raw)
      break
    case 'refresh':
      startRefresh(event.trigger)
      break
    case 'refresh-ended':
      s.refreshing = false
      break
    case 'lock-granted':
      if (event.grant === 'stolen') s.stats.lockSteals++
      break
    case 'request-sent':
      s.stats.refreshRequests++
      if (s.held) post({ type: 'refreshing', sessionId: s.held.token.sessionId })
      break
    case 'token':
      adopt(event.held, event.source, event.from, event.suspect ?? false)
      // Shared even when it equals the token held (a replay, or issued within the same second):
      // the others then learn its measured clock offset.
      if (event.source === 'refresh' && s.held?.token.raw === event.held.token.raw) share('refresh')
      break
    case 'no-progress':
      s.backoff = { attempt: event.attempt, retryAt: event.retryAt, error: null }
      break
    case 'clock-measured':
      if (s.held?.token.raw === event.held.token.raw) s.held = event.held
      s.suspect = false
      break
    case 'refresh-failed': {
      const { error, attempt, retryAt } = event
      if (event.local) s.stats.refreshFailures++
      Object.assign(s, { remote: null, backoff: { attempt, retryAt, error }, error })
      if (event.local && s.held) {
        const message = error.message.slice(0, 500)
        const at = Number.isFinite(retryAt) ? retryAt : null
        post({ type: 'refresh-failed', sessionId: s.held.token.sessionId, code: error.code, message, attempt, retryAt: at })
      }
      break
    }
    case 'recovery': {
      const { error, tokenRaw } = event
      if (event.local) s.stats.refreshFailures++
      if (s.held?.token.raw !== tokenRaw || recoveryError(s)) break
      Object.assign(s, { recovery: { tokenRaw, error }, remote: null, backoff: null, error })
      if (event.local) post({ type: 'recovery', sessionId: s.held.token.sessionId, token: tokenRaw, reason: error.reason ?? 'unknown' })
      effects.push({ type: 'call-on-recovery', error }, { type: 'dispatch', name: 'session-keeper:recovery', error })
      break
    }
    case 'refresh-at-expiry':
      if (event.local) s.stats.refreshFailures++
      s.remote = null
      if (event.retryAt > now) s.backoff = { attempt: 0, retryAt: event.retryAt, error: null }
      if ((!s.atExpiry || s.holdMs !== event.holdMs) && event.local)
        post({ type: 'mode', refreshAtExpiry: true, retryAt: event.retryAt, holdMs: event.holdMs })
      s.atExpiry = true
      s.holdMs = event.holdMs
      break
    case 'session-ended':
      endSession(event.error, event.broadcast)
      break
    case 'remote-refreshing':
      s.remote = { from: event.from, since: now }
      // Stand by behind the refresher: if it dies mid-refresh, the lock passes to us.
      startRefresh('standby')
      break
    case 'remote-done':
      s.remote = null
      break
    case 'hello':
      if (s.running && s.held && isUsable(s, now)) {
        share('reply')
        if (s.atExpiry) post({ type: 'mode', refreshAtExpiry: true, holdMs: s.holdMs })
      } else if (s.running && s.signedOut && s.endedSessionId) {
        post({ type: 'signed-out', sessionId: s.endedSessionId, rejected: false })
      }
      break
    case 'ignored':
      s.stats.messagesIgnored++
      break
  }
  return { state: unchanged(state, s) ? state : s, effects }
}

type Draft = { -readonly [K in keyof AgentState]: AgentState[K] } & { stats: SessionStats }

/** No field and no counter differs. */
function unchanged(before: AgentState, after: Draft): boolean {
  const same = <T extends object>(a: T, b: T) => (Object.keys(a) as (keyof T)[]).every((key) => Object.is(a[key], b[key]))
  return same({ ...before, stats: 0 }, { ...after, stats: 0 }) && same(before.stats, after.stats)
}

/**
 * This tab's own refresh answer replaces the token held even when it is not strictly newer: when
 * issued in the same second (another `jti`), or when the held one came from the channel and
 * claims to be at most a few seconds newer (a forged token can claim no more; see receive.ts). A
 * late answer much older than the token held (a tab that was frozen) does not.
 */
export function isAuthoritative(next: HeldToken, current: HeldToken, heldSource: TokenSource | null): boolean {
  if (next.token.sessionId !== current.token.sessionId) return false
  const behindS = current.token.issuedAt - next.token.issuedAt
  return behindS <= 0 || (heldSource === 'tab' && behindS <= CHANNEL_FUTURE_TOLERANCE_MS / 1000)
}

/**
 * The one timer: at the refresh time (later in tabs that are not in front, so the focused tab
 * goes first), or at expiry, whichever is sooner; none while loading, refreshing, away or offline.
 */
export function wakeAt(state: AgentState, input: TransitionInput): number | null {
  const { now } = input
  if (!state.running || state.loading || state.refreshing || state.away) return null
  const { refreshAt, expiresAt } = deriveView(state, now, input.refreshMarginMs)
  if (refreshAt === null || expiresAt === null) return null
  const delay = input.visible ? (input.focused ? 0 : VISIBLE_TAB_MS) : HIDDEN_TAB_MS
  let target = input.online ? refreshAt + delay : Infinity
  if (now < expiresAt) target = Math.min(target, expiresAt)
  return target === Infinity ? null : target
}
