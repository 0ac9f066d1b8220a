/**
 * The agent's transition, as plain data: a state, an event, the input; the next state and the
 * effects. No tabs, no timers, no channel: each row is one rule of the agent.
 */
import { describe, expect, it } from 'vitest'
import { RefreshError } from '../../src/index.js'
import { fromRefresh, fromUnmeasured, type HeldToken } from '../../src/core/timing.js'
import { decodeSessionToken } from '../../src/core/token.js'
import { type AgentState, INITIAL_AGENT_STATE } from '../../src/agent/state.js'
import { type AgentEvent, type Effect, transition, type TransitionInput, wakeAt } from '../../src/agent/transition.js'
import { eventOf } from '../../src/agent/receive.js'
import { PROTOCOL_VERSION, type TokenMessage } from '../../src/tabs/protocol.js'
import { sessionJwt } from '../helpers/jwt.js'

const T0 = Date.UTC(2026, 11, 1, 12)
/** Issued at T0, 60 s of life: due at T0 + 45 s, expires at T0 + 60 s. */
const CURRENT = sessionJwt(T0)
const NEWER = sessionJwt(T0 + 30_000)
const OTHER_SESSION = sessionJwt(T0 + 30_000, { sid: 'sess_2' })

const measured = (raw: string, issuedAt: number): HeldToken => fromRefresh(decodeSessionToken(raw), issuedAt, issuedAt + 20)
const unmeasured = (raw: string, now: number): HeldToken => {
  const { suspect: _, ...held } = fromUnmeasured(decodeSessionToken(raw), now)
  return held
}

/** A started tab holding CURRENT, measured, nothing pending. */
const ACTIVE: AgentState = { ...INITIAL_AGENT_STATE, running: true, loading: false, held: measured(CURRENT, T0), heldSource: 'refresh' }
const REFRESHING: AgentState = { ...ACTIVE, refreshing: true }
const SIGNED_OUT: AgentState = { ...ACTIVE, held: null, heldSource: null, signedOut: true, endedSessionId: 'sess_1' }
const rateLimited = new RefreshError('refresh_rate_limited', 'The proxy answered 429', { status: 429, retryAfterMs: 3_000 })
const recovery = new RefreshError('recovery_required', 'The proxy answered 409', { status: 409, reason: 'refresh_token_not_found' })

function input(at: number, page: Partial<TransitionInput> = {}): TransitionInput {
  return {
    now: at,
    online: true,
    visible: true,
    focused: true,
    tabId: 'tab_a',
    refreshMarginMs: undefined,
    lockTimeoutMs: 12_000,
    appSuppliesTokens: false,
    ...page,
  }
}

interface Row {
  rule: string
  state: AgentState
  event: AgentEvent
  at?: number
  page?: Partial<TransitionInput>
  /** Fields of the next state. */
  next?: Partial<AgentState> | 'unchanged'
  /** The effects, all of them, in order. */
  effects: Effect[]
}

const DUE = T0 + 46_000
const MID = T0 + 10_000

const ROWS: Row[] = [
  // Start and stop.
  {
    rule: 'start adopts the cookie and asks the other tabs',
    state: INITIAL_AGENT_STATE,
    event: { type: 'start', token: CURRENT },
    at: MID,
    next: { running: true, loading: true, held: unmeasured(CURRENT, MID), heldSource: 'startup' },
    effects: [{ type: 'post', message: { type: 'hello' } }],
  },
  {
    rule: 'start with a malformed cookie holds nothing and says why',
    state: INITIAL_AGENT_STATE,
    event: { type: 'start', token: 'not-a-jwt' },
    next: { running: true, held: null, error: expect.objectContaining({ code: 'token_malformed' }) },
    effects: [{ type: 'post', message: { type: 'hello' } }],
  },
  { rule: 'stop', state: ACTIVE, event: { type: 'stop' }, next: { running: false }, effects: [] },
  {
    rule: 'the end of loading refreshes a token that is due',
    state: { ...ACTIVE, loading: true },
    event: { type: 'loaded', cookie: CURRENT },
    at: DUE,
    next: { loading: false, refreshing: true },
    effects: [{ type: 'start-refresh', trigger: 'scheduled' }],
  },
  {
    rule: 'the end of loading leaves a fresh token alone',
    state: { ...ACTIVE, loading: true },
    event: { type: 'loaded', cookie: null },
    next: { loading: false },
    effects: [],
  },
  // The timer and the page.
  {
    rule: 'a tick before the token is due does nothing',
    state: ACTIVE,
    event: { type: 'tick', cookie: CURRENT },
    at: MID,
    next: 'unchanged',
    effects: [],
  },
  {
    rule: 'a tick when due starts the refresh',
    state: ACTIVE,
    event: { type: 'tick', cookie: null },
    at: DUE,
    next: { refreshing: true },
    effects: [{ type: 'start-refresh', trigger: 'scheduled' }],
  },
  {
    rule: 'offline, nothing is attempted',
    state: ACTIVE,
    event: { type: 'tick', cookie: null },
    at: DUE,
    page: { online: false },
    next: 'unchanged',
    effects: [],
  },
  {
    rule: 'no request before the backoff allows it',
    state: { ...ACTIVE, backoff: { attempt: 0, retryAt: DUE + 3_000, error: rateLimited } },
    event: { type: 'tick', cookie: null },
    at: DUE,
    next: 'unchanged',
    effects: [],
  },
  { rule: 'one run at a time', state: REFRESHING, event: { type: 'tick', cookie: NEWER }, at: DUE, next: 'unchanged', effects: [] },
  {
    rule: 'a stopped tab never refreshes',
    state: { ...ACTIVE, running: false },
    event: { type: 'refresh', trigger: 'demand' },
    at: DUE,
    next: 'unchanged',
    effects: [],
  },
  {
    rule: 'a late timer is counted',
    state: ACTIVE,
    event: { type: 'tick', cookie: null, lateByMs: 5_000 },
    at: MID,
    next: { stats: { ...ACTIVE.stats, timerCallbacks: 1, lateTimers: 1 } },
    effects: [],
  },
  {
    rule: 'a newer cookie is adopted, unmeasured',
    state: ACTIVE,
    event: { type: 'tick', cookie: NEWER },
    at: T0 + 31_000,
    next: { held: unmeasured(NEWER, T0 + 31_000), heldSource: 'cookie', lastUpdate: { source: 'cookie', tabId: 'tab_a', at: T0 + 31_000 } },
    effects: [],
  },
  {
    rule: 'a sign-in as someone else is told to the other tabs at once',
    state: ACTIVE,
    event: { type: 'tick', cookie: OTHER_SESSION },
    at: T0 + 31_000,
    next: { held: unmeasured(OTHER_SESSION, T0 + 31_000) },
    effects: [{ type: 'post', message: { type: 'token', token: OTHER_SESSION, offsetMs: 0, skewKnown: false, cause: 'set' } }],
  },
  {
    rule: 'an announcement never answered is forgotten after lockTimeoutMs',
    state: { ...ACTIVE, remote: { from: 'tab_b', since: MID } },
    event: { type: 'tick', cookie: null },
    at: MID + 12_001,
    next: { remote: null },
    effects: [],
  },
  {
    rule: 'a changed cookie is looked at once the channel had its say',
    state: ACTIVE,
    event: { type: 'cookie-changed' },
    next: 'unchanged',
    effects: [{ type: 'tick-after', ms: 300 }],
  },
  // The app.
  {
    rule: 'setToken for a session that ended here revives it and tells the tabs',
    state: SIGNED_OUT,
    event: { type: 'found', raw: NEWER, source: 'setToken' },
    at: T0 + 31_000,
    next: { signedOut: false, endedSessionId: null, held: unmeasured(NEWER, T0 + 31_000), heldSource: 'setToken' },
    effects: [{ type: 'post', message: { type: 'token', token: NEWER, offsetMs: 0, skewKnown: false, cause: 'set' } }],
  },
  {
    rule: 'setToken of an older token changes nothing',
    state: { ...ACTIVE, held: measured(NEWER, T0 + 30_000) },
    event: { type: 'found', raw: CURRENT, source: 'setToken' },
    at: T0 + 31_000,
    next: 'unchanged',
    effects: [],
  },
  {
    rule: 'a signed-out tab does not refresh on demand',
    state: SIGNED_OUT,
    event: { type: 'refresh', trigger: 'demand' },
    next: 'unchanged',
    effects: [],
  },
  {
    rule: 'a token in recovery is never asked for again',
    state: { ...ACTIVE, recovery: { tokenRaw: CURRENT, error: recovery } },
    event: { type: 'refresh', trigger: 'force' },
    at: DUE,
    next: 'unchanged',
    effects: [],
  },
  {
    rule: 'signOut ends the session everywhere and expires the cookie',
    state: ACTIVE,
    event: { type: 'session-ended', error: null, broadcast: true },
    next: { signedOut: true, held: null, endedSessionId: 'sess_1', error: null },
    effects: [{ type: 'delete-cookie' }, { type: 'post', message: { type: 'signed-out', sessionId: 'sess_1', rejected: false } }],
  },
  {
    rule: 'an app that supplies its tokens keeps its cookie on sign-out',
    state: ACTIVE,
    event: { type: 'session-ended', error: null, broadcast: false },
    page: { appSuppliesTokens: true },
    next: { signedOut: true },
    effects: [],
  },
  {
    rule: 'a second sign-out message changes nothing',
    state: SIGNED_OUT,
    event: { type: 'session-ended', error: null, broadcast: false },
    next: 'unchanged',
    effects: [],
  },
  // The refresh run.
  { rule: 'the end of a run', state: REFRESHING, event: { type: 'refresh-ended' }, next: { refreshing: false }, effects: [] },
  {
    rule: 'a lock granted at once is no news',
    state: REFRESHING,
    event: { type: 'lock-granted', grant: 'free' },
    next: 'unchanged',
    effects: [],
  },
  {
    rule: 'a stolen lock is counted',
    state: REFRESHING,
    event: { type: 'lock-granted', grant: 'stolen' },
    next: { stats: { ...ACTIVE.stats, lockSteals: 1 } },
    effects: [],
  },
  {
    rule: 'the request is announced to the other tabs',
    state: REFRESHING,
    event: { type: 'request-sent' },
    next: { stats: { ...ACTIVE.stats, refreshRequests: 1 } },
    effects: [{ type: 'post', message: { type: 'refreshing', sessionId: 'sess_1' } }],
  },
  {
    rule: 'our own answer is adopted and shared, measured',
    state: { ...REFRESHING, error: rateLimited, backoff: { attempt: 0, retryAt: 0, error: rateLimited } },
    event: { type: 'token', held: measured(NEWER, T0 + 30_000), source: 'refresh', from: 'tab_a' },
    at: T0 + 30_020,
    next: { held: measured(NEWER, T0 + 30_000), error: null, backoff: null, heldSource: 'refresh' },
    effects: [
      {
        type: 'post',
        message: {
          type: 'token',
          token: NEWER,
          offsetMs: expect.any(Number),
          offsetHighMs: expect.any(Number),
          skewKnown: true,
          cause: 'refresh',
        },
      },
    ],
  },
  {
    rule: 'an older token from another tab is ignored, and counted',
    state: { ...ACTIVE, held: measured(NEWER, T0 + 30_000) },
    event: { type: 'token', held: measured(CURRENT, T0), source: 'tab', from: 'tab_b' },
    next: { held: measured(NEWER, T0 + 30_000), stats: { ...ACTIVE.stats, messagesIgnored: 1 } },
    effects: [],
  },
  {
    rule: 'a token of the session that ended here is never adopted (a late answer)',
    state: SIGNED_OUT,
    event: { type: 'token', held: measured(NEWER, T0 + 30_000), source: 'refresh', from: 'tab_a' },
    next: 'unchanged',
    effects: [],
  },
  {
    rule: 'a token from another tab ends the wait for its announcement',
    state: { ...ACTIVE, remote: { from: 'tab_b', since: DUE } },
    event: { type: 'token', held: measured(NEWER, T0 + 30_000), source: 'tab', from: 'tab_b' },
    next: { remote: null, held: measured(NEWER, T0 + 30_000), stats: { ...ACTIVE.stats, tokensFromTabs: 1 } },
    effects: [],
  },
  {
    rule: 'even a token not adopted ends the wait for the tab that sent it',
    state: { ...ACTIVE, held: measured(NEWER, T0 + 30_000), remote: { from: 'tab_b', since: DUE } },
    event: { type: 'token', held: measured(CURRENT, T0), source: 'tab', from: 'tab_b' },
    next: { remote: null, held: measured(NEWER, T0 + 30_000) },
    effects: [],
  },
  {
    rule: 'a local failure backs off, says so, and tells the tabs ("never" as null)',
    state: REFRESHING,
    event: { type: 'refresh-failed', error: rateLimited, attempt: 0, retryAt: Infinity, local: true },
    next: {
      backoff: { attempt: 0, retryAt: Infinity, error: rateLimited },
      error: rateLimited,
      stats: { ...ACTIVE.stats, refreshFailures: 1 },
    },
    effects: [
      {
        type: 'post',
        message: {
          type: 'refresh-failed',
          sessionId: 'sess_1',
          code: 'refresh_rate_limited',
          message: 'The proxy answered 429',
          attempt: 0,
          retryAt: null,
        },
      },
    ],
  },
  {
    rule: "another tab's failure backs off here too, without an echo",
    state: { ...ACTIVE, remote: { from: 'tab_b', since: DUE } },
    event: { type: 'refresh-failed', error: rateLimited, attempt: 2, retryAt: DUE + 3_000, local: false },
    next: { remote: null, backoff: { attempt: 2, retryAt: DUE + 3_000, error: rateLimited } },
    effects: [],
  },
  {
    rule: 'a 409 stops every tab from asking for this token and tells the app',
    state: REFRESHING,
    event: { type: 'recovery', tokenRaw: CURRENT, error: recovery, local: true },
    next: { recovery: { tokenRaw: CURRENT, error: recovery }, error: recovery },
    effects: [
      { type: 'post', message: { type: 'recovery', sessionId: 'sess_1', token: CURRENT, reason: 'refresh_token_not_found' } },
      { type: 'call-on-recovery', error: recovery },
      { type: 'dispatch', name: 'session-keeper:recovery', error: recovery },
    ],
  },
  {
    rule: 'a recovery for a token no longer held is no news',
    state: { ...ACTIVE, held: measured(NEWER, T0 + 30_000) },
    event: { type: 'recovery', tokenRaw: CURRENT, error: recovery, local: false },
    next: 'unchanged',
    effects: [],
  },
  {
    rule: 'the first refusal before expiry switches every tab to refreshing at expiry',
    state: REFRESHING,
    event: { type: 'refresh-at-expiry', retryAt: T0 + 61_050, holdMs: 0, local: true },
    at: DUE,
    next: { atExpiry: true, backoff: { attempt: 0, retryAt: T0 + 61_050, error: null } },
    effects: [{ type: 'post', message: { type: 'mode', refreshAtExpiry: true, retryAt: T0 + 61_050, holdMs: 0 } }],
  },
  {
    rule: 'a refusal from a proxy that holds requests tells every tab its window',
    state: REFRESHING,
    event: { type: 'refresh-at-expiry', retryAt: T0 + 60_050, holdMs: 2_000, local: true },
    at: DUE,
    next: { atExpiry: true, holdMs: 2_000, backoff: { attempt: 0, retryAt: T0 + 60_050, error: null } },
    effects: [{ type: 'post', message: { type: 'mode', refreshAtExpiry: true, retryAt: T0 + 60_050, holdMs: 2_000 } }],
  },
  {
    rule: 'later refusals say nothing new',
    state: { ...REFRESHING, atExpiry: true },
    event: { type: 'refresh-at-expiry', retryAt: 0, holdMs: 0, local: true },
    at: DUE,
    next: { stats: { ...ACTIVE.stats, refreshFailures: 1 } },
    effects: [],
  },
  {
    rule: 'a refusal that no longer says the proxy holds goes back to refreshing after expiry, in every tab',
    state: { ...REFRESHING, atExpiry: true, holdMs: 2_000 },
    event: { type: 'refresh-at-expiry', retryAt: 0, holdMs: 0, local: true },
    at: DUE,
    next: { holdMs: 0, stats: { ...ACTIVE.stats, refreshFailures: 1 } },
    effects: [{ type: 'post', message: { type: 'mode', refreshAtExpiry: true, retryAt: 0, holdMs: 0 } }],
  },
  {
    rule: 'the very token answered back: no retry before retryAt',
    state: REFRESHING,
    event: { type: 'no-progress', attempt: 0, retryAt: DUE + 500 },
    next: { backoff: { attempt: 0, retryAt: DUE + 500, error: null } },
    effects: [],
  },
  {
    rule: "the proxy's Date measures an unmeasured token",
    state: { ...ACTIVE, held: unmeasured(CURRENT, MID), suspect: true },
    event: { type: 'clock-measured', held: measured(CURRENT, T0) },
    next: { held: measured(CURRENT, T0), suspect: false },
    effects: [],
  },
  // The channel.
  {
    rule: "another tab's refresh: stand by behind it",
    state: ACTIVE,
    event: { type: 'remote-refreshing', from: 'tab_b' },
    at: DUE,
    next: { remote: { from: 'tab_b', since: DUE }, refreshing: true },
    effects: [{ type: 'start-refresh', trigger: 'standby' }],
  },
  {
    rule: 'the wait for another tab is over',
    state: { ...ACTIVE, remote: { from: 'tab_b', since: DUE } },
    event: { type: 'remote-done' },
    next: { remote: null },
    effects: [],
  },
  {
    rule: 'a new tab is told the token, and that refreshes wait for expiry',
    state: { ...ACTIVE, atExpiry: true },
    event: { type: 'hello' },
    at: MID,
    next: 'unchanged',
    effects: [
      {
        type: 'post',
        message: {
          type: 'token',
          token: CURRENT,
          offsetMs: expect.any(Number),
          offsetHighMs: expect.any(Number),
          skewKnown: true,
          cause: 'reply',
        },
      },
      { type: 'post', message: { type: 'mode', refreshAtExpiry: true, holdMs: 0 } },
    ],
  },
  {
    rule: 'a new tab is not told an expired token',
    state: ACTIVE,
    event: { type: 'hello' },
    at: T0 + 60_000,
    next: 'unchanged',
    effects: [],
  },
  {
    rule: 'a new tab is told the session ended',
    state: SIGNED_OUT,
    event: { type: 'hello' },
    next: 'unchanged',
    effects: [{ type: 'post', message: { type: 'signed-out', sessionId: 'sess_1', rejected: false } }],
  },
  {
    rule: 'a dropped message is counted',
    state: ACTIVE,
    event: { type: 'ignored' },
    next: { stats: { ...ACTIVE.stats, messagesIgnored: 1 } },
    effects: [],
  },
]

describe('transition(state, event, input)', () => {
  it.each(ROWS)('$rule', ({ state, event, at = MID, page, next, effects }) => {
    const before = JSON.stringify(state)
    const result = transition(state, event, input(at, page))
    expect(result.effects).toEqual(effects)
    if (next === 'unchanged') expect(result.state).toBe(state)
    else expect(result.state).toMatchObject(next ?? {})
    expect(JSON.stringify(state)).toBe(before) // pure: the state given is never modified
  })
})

describe('wakeAt(state, input): the one timer', () => {
  const refreshAt = (state: AgentState) => wakeAt(state, input(MID))! // focused
  it.each([
    { page: 'focused', placement: {}, delayMs: 0 },
    { page: 'visible, not focused', placement: { focused: false }, delayMs: 250 },
    { page: 'hidden', placement: { visible: false, focused: false }, delayMs: 1_000 },
  ])('a $page tab wakes $delayMs ms after the focused one', ({ placement, delayMs }) => {
    expect(wakeAt(ACTIVE, input(MID, placement))).toBe(refreshAt(ACTIVE) + delayMs)
  })
  it('offline, it wakes at expiry only (to say so)', () => {
    expect(wakeAt(ACTIVE, input(MID, { online: false }))).toBe(decodeSessionToken(CURRENT).expiresAt * 1000 + ACTIVE.held!.offsetMs)
  })
  it.each([
    { why: 'while loading', state: { ...ACTIVE, loading: true } },
    { why: 'while refreshing', state: REFRESHING },
    { why: 'when stopped', state: { ...ACTIVE, running: false } },
    { why: 'when signed out', state: SIGNED_OUT },
  ])('never $why', ({ state }) => {
    expect(wakeAt(state, input(MID))).toBeNull()
  })
  it('after a refusal that outlasts the token, at expiry and then at the retry', () => {
    const expiry = decodeSessionToken(CURRENT).expiresAt * 1000 + ACTIVE.held!.offsetMs
    const limited = { ...ACTIVE, backoff: { attempt: 0, retryAt: expiry + 5_000, error: rateLimited } }
    expect(wakeAt(limited, input(DUE))).toBe(expiry)
    expect(wakeAt(limited, input(expiry + 1))).toBe(expiry + 5_000)
  })
})

describe('a token message read as an event (receive.ts)', () => {
  const view = { now: MID, retryMaxDelayMs: 30_000, cookieSessionId: () => null, acceptOtherSessions: false }
  const from = (raw: string): TokenMessage => {
    const held = ACTIVE.held!
    return { v: PROTOCOL_VERSION, from: 'tab_b', type: 'token', token: raw, offsetMs: held.offsetMs, skewKnown: true, cause: 'reply' }
  }

  it('the token held, as every tab answers a hello: read without decoding it again (the held one reused), and nothing changes', () => {
    const event = eventOf(from(CURRENT), ACTIVE, view)
    if (event.type !== 'token') throw new Error(`expected a token event, got ${event.type}`)
    expect(event.held.token).toBe(ACTIVE.held!.token)
    expect(transition(ACTIVE, event, input(MID)).state).toBe(ACTIVE)
  })

  it('a newer token is decoded and adopted; a malformed one is ignored', () => {
    const later = T0 + 31_000 // NEWER was issued at T0 + 30 s
    const event = eventOf(from(NEWER), ACTIVE, { ...view, now: later })
    if (event.type !== 'token') throw new Error(`expected a token event, got ${event.type}`)
    expect(event.held.token).toEqual(decodeSessionToken(NEWER))
    expect(transition(ACTIVE, event, input(later)).state.held?.token.raw).toBe(NEWER)
    expect(eventOf(from(`${CURRENT}x.y`), ACTIVE, view)).toEqual({ type: 'ignored' })
  })
})
