import { describe, expect, it } from 'vitest'
import { decodeSessionToken, type RefreshError, TokenUnavailableError } from '../../src/index.js'
import { sessionJwt } from '../helpers/jwt.js'
import { worldPerTest, type World, type Tab } from '../helpers/tabs.js'
import { advance, jumpClock } from '../helpers/time.js'

/**
 * Every answer the agent can get, at every moment of a token's life, with three tabs: what each
 * tab's state says, what `getToken()` answers, and how many requests reach the proxy after it.
 * Expectations come from the wire table (the README's "What each proxy answer does"), by the kind of answer.
 */

type Body = 'contract' | 'unknown' | 'html' | 'empty'
type Moment = 'mid-life' | 'margin' | 'expired' | 'outlasting'
/** What the contract says the agent does with an answer. */
type Kind = 'refused' | 'recovery' | 'signout' | 'backoff' | 'at-expiry' | 'jitter'

interface Answer {
  name: string
  status?: number
  /** The proxy's code for it (the body kind `contract`). */
  code?: string
  transport?: 'network' | 'timeout'
}

const ANSWERS: Answer[] = [
  { name: '400', status: 400, code: 'invalid_request' },
  { name: '401', status: 401, code: 'session_ended' },
  { name: '403', status: 403, code: 'origin_not_allowed' },
  { name: '404', status: 404, code: 'not_found' },
  { name: '405', status: 405, code: 'method_not_allowed' },
  { name: '408', status: 408, code: 'body_timeout' },
  { name: '409', status: 409, code: 'recovery_required' },
  { name: '413', status: 413, code: 'body_too_large' },
  { name: '415', status: 415, code: 'unsupported_media_type' },
  { name: '429', status: 429, code: 'rate_limited' },
  { name: '500', status: 500, code: 'internal_error' },
  { name: '502', status: 502, code: 'upstream_bad_response' },
  { name: '503', status: 503, code: 'upstream_unavailable' },
  { name: '503 not_yet_expired', status: 503, code: 'not_yet_expired' },
  { name: '504', status: 504, code: 'upstream_timeout' },
  { name: 'network error', transport: 'network' },
  { name: 'timeout', transport: 'timeout' },
]
const BODIES: Body[] = ['contract', 'unknown', 'html', 'empty']
const MOMENTS: Moment[] = ['mid-life', 'margin', 'expired', 'outlasting']

const LIFETIME_S = 10
/** The refresh margin of a 10 s token: half its life. */
const MARGIN_MS = 5_000
const GET_TOKEN_TIMEOUT_MS = 5_000
/** Shorter than the shortest lock wait: a request slower than that looks like a frozen tab (tabs.test.ts). */
const REQUEST_TIMEOUT_MS = 200
const RETRY_MAX_DELAY_MS = 30_000
/** `random` is fixed, so the jittered backoff is half its ceiling: 500 ms, then 1 s, … */
const FIRST_JITTER_MS = 500

function kindOf(answer: Answer, body: Body): Kind {
  if (answer.transport || answer.status === 408) return 'jitter'
  const status = answer.status!
  if (status === 401) return body === 'contract' ? 'signout' : 'recovery'
  if (status === 409) return 'recovery'
  if (answer.code === 'not_yet_expired' && body === 'contract') return 'at-expiry'
  if (status === 429 || status >= 500) return 'backoff'
  return 'refused'
}

function errorCodeOf(answer: Answer, kind: Kind): string | null {
  if (kind === 'at-expiry') return null
  if (kind === 'signout') return 'refresh_rejected'
  if (kind === 'recovery') return 'recovery_required'
  if (kind === 'refused') return 'refresh_refused'
  if (answer.transport === 'network') return 'refresh_network'
  if (answer.transport === 'timeout' || answer.status === 408) return 'refresh_timeout'
  return answer.status === 429 ? 'refresh_rate_limited' : 'refresh_unavailable'
}

function responseOf(answer: Answer, body: Body, retryAfterS: number): Response | 'network' | 'hang' {
  if (answer.transport === 'network') return 'network'
  if (answer.transport === 'timeout') return 'hang'
  const status = answer.status!
  const headers = new Headers()
  if (status === 429 || status >= 500) headers.set('retry-after', String(retryAfterS))
  const json = (code: string) => {
    headers.set('content-type', 'application/json')
    return JSON.stringify({ error: { code, message: 'from the table' } })
  }
  if (body === 'html') headers.set('content-type', 'text/html')
  const text = {
    contract: () => json(answer.code!),
    unknown: () => json('some_other_code'),
    html: () => `<html><body><h1>${status}</h1>An edge said no.</body></html>`,
    empty: () => '',
  }[body]()
  return new Response(text, { status, headers })
}

let world: World
worldPerTest((w) => {
  world = w
  w.proxy.latencyMs = 20
  w.proxy.lifetimeS = LIFETIME_S
  w.shareCookies()
  w.cookie = sessionJwt(Date.now(), { lifetimeS: LIFETIME_S })
})

/** What `getToken()` answered: a token (and whether it was still valid), null, or the error. */
type Answered = { token: string | null; valid: boolean } | { error: unknown }

function ask(tab: Tab): Promise<Answered> {
  return tab.keeper.getToken().then(
    (token) => ({ token, valid: token === null || decodeSessionToken(token).expiresAt * 1000 > Date.now() }),
    (error: unknown) => ({ error }),
  )
}

function expectUnavailable(answered: Answered, causeCode: string | null): void {
  expect(answered).toHaveProperty('error')
  const { error } = answered as { error: TokenUnavailableError }
  expect(error).toBeInstanceOf(TokenUnavailableError)
  if (causeCode) expect((error.cause as RefreshError).code).toBe(causeCode)
}

const cases = ANSWERS.flatMap((answer) =>
  (answer.transport ? (['contract'] as Body[]) : BODIES).flatMap((body) => MOMENTS.map((moment) => ({ answer, body, moment }))),
)

describe('every answer, every moment, three tabs', () => {
  it.each(cases)('$answer.name with a $body body, $moment', async ({ answer, body, moment }) => {
    const kind = kindOf(answer, body)
    const retryAfterS = moment === 'outlasting' ? 12 : 3
    const tabs = ['focused', 'visible', 'hidden'].map((place, i) =>
      world.open(`t${i}`, {
        getTokenTimeoutMs: GET_TOKEN_TIMEOUT_MS,
        requestTimeoutMs: REQUEST_TIMEOUT_MS,
        random: () => 0.5,
        retryMaxDelayMs: RETRY_MAX_DELAY_MS,
        env: { focused: place === 'focused', visible: place !== 'hidden' },
      }),
    )
    for (const tab of tabs) tab.keeper.start()
    await advance(300)
    const startedAt = Date.now()
    const first = world.cookie!
    const expiresAt = decodeSessionToken(first).expiresAt * 1000
    world.proxy.outage = { until: Infinity, answer: () => responseOf(answer, body, retryAfterS) }

    // The request that meets the answer.
    if (moment === 'mid-life') {
      await advance(700)
      void tabs[0]!.keeper.getToken({ forceRefresh: true }).catch(() => {})
    } else if (moment === 'expired') {
      jumpClock(expiresAt + 1_000 - Date.now()) // the machine slept through the token's expiry
      for (const tab of tabs) tab.env.emit('visible')
    }
    const until = moment === 'margin' || moment === 'outlasting' ? startedAt + MARGIN_MS + 2_000 : Date.now() + 500
    while (world.proxy.calls.length === 0 && Date.now() < until) await advance(50)
    expect(world.proxy.calls).toHaveLength(1)
    // When the failure reached the tab that asked.
    const failedAt = world.proxy.calls[0]!.at + (answer.transport === 'timeout' ? REQUEST_TIMEOUT_MS : world.proxy.latencyMs)
    await advance(failedAt + 100 - Date.now())
    const tokenValid = Date.now() < expiresAt - 250

    // Every tab knows, and says so in its state.
    for (const tab of tabs) {
      const state = tab.keeper.getState()
      // The state offers the token while it is valid, never after.
      const current = Date.now() < expiresAt ? first : null
      if (kind === 'signout') expect(state.status).toBe('signedOut')
      else if (kind === 'at-expiry') expect(state.token).toBe(current)
      else expect(state).toMatchObject({ status: tokenValid ? 'active' : 'expired', token: current, sessionId: 'sess_1' })
      expect(state.error?.code ?? null).toBe(errorCodeOf(answer, kind))
    }

    // When the next request may go out, by the contract. A refused request is not retried by
    // the tab that made it; a report on the channel stops the others for `retryMaxDelayMs` at most.
    const quietUntil =
      kind === 'backoff'
        ? failedAt + retryAfterS * 1000
        : kind === 'jitter'
          ? failedAt + FIRST_JITTER_MS
          : kind === 'at-expiry'
            ? Math.max(expiresAt, failedAt + Math.min(retryAfterS, LIFETIME_S) * 1000 - 1_000)
            : kind === 'refused'
              ? failedAt + RETRY_MAX_DELAY_MS
              : Infinity
    const healAt = kind === 'refused' ? Infinity : Math.min(quietUntil, failedAt + 40_000)
    world.proxy.outage.until = healAt

    // What getToken() answers now, in every tab: never an expired token.
    const answers = tabs.map(ask)
    await advance(Math.max(0, Math.min(quietUntil, healAt) - Date.now() - 60))
    // Nobody sent before the answer allowed it.
    expect(world.proxy.calls).toHaveLength(1)
    // A token still valid is refreshed when due, not before.
    const dueAt = tokenValid && kind !== 'refused' ? expiresAt - MARGIN_MS : 0
    await advance(Math.max(Date.now(), dueAt) + 2_500 - Date.now())
    const settled = await Promise.all(answers)
    for (const answered of settled) {
      if (kind === 'signout') expect(answered).toEqual({ token: null, valid: true })
      else if ('error' in answered) expectUnavailable(answered, null)
      else if (tokenValid) expect(answered).toMatchObject({ token: first, valid: true })
      else expect(answered.valid).toBe(true)
    }

    if (kind === 'recovery' || kind === 'signout') {
      // Never asked for again, in any tab.
      expect(world.proxy.calls).toHaveLength(1)
      if (kind === 'recovery' && !tokenValid) for (const answered of settled) expectUnavailable(answered, 'recovery_required')
      return
    }
    if (kind === 'refused') {
      // Once more after `retryMaxDelayMs`, by one tab for all (a fixed deployment heals).
      expect(world.proxy.calls).toHaveLength(2)
      if (!tokenValid) for (const answered of settled) expectUnavailable(answered, 'refresh_refused')
      return
    }
    // Retried once, for every tab, as soon as allowed: the session is whole again.
    expect(world.proxy.calls).toHaveLength(2)
    expect(world.proxy.calls[1]!.at).toBeGreaterThanOrEqual(quietUntil)
    const fresh = world.cookie
    expect(fresh).not.toBe(world.proxy.calls[0]!.token)
    for (const tab of tabs) expect(tab.keeper.getState()).toMatchObject({ status: 'active', token: fresh, error: null })
    // A token that expired while getToken() waited: it waited for the retry when that fell within
    // its timeout, and said why not when it did not.
    const waitedLongEnough = healAt - failedAt < GET_TOKEN_TIMEOUT_MS
    for (const answered of settled) {
      if (tokenValid) continue
      if (waitedLongEnough) expect(answered).toEqual({ token: fresh, valid: true })
      else expectUnavailable(answered, errorCodeOf(answer, kind))
    }
  })
})
