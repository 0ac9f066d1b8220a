import { systemClock } from '../core/clock.js'
import { browserEnvironment } from '../core/environment.js'
import { decodeSessionToken } from '../core/token.js'
import { createTransport, type FetchLike } from '../core/transport.js'
import { NotStartedError } from '../errors/NotStartedError.js'
import { TokenUnavailableError } from '../errors/TokenUnavailableError.js'
import { browserChannel } from '../tabs/channel.js'
import { Agent } from './agent.js'
import type { ResolvedOptions, SessionKeeperOptions } from './options.js'
import { dueAt, isDue, isUsable, recoveryError, retryAt, type SessionState, type SessionStats } from './state.js'

export interface GetTokenOptions {
  /** Refresh even if the token held is still fresh (e.g. after the API answered 401). */
  forceRefresh?: boolean
}

export interface SessionKeeper {
  /** Reads the initial token, joins the other tabs and schedules refreshes. Returns `stop`. */
  start(): () => void
  /** Removes every timer, listener and the channel. The keeper can be started again. */
  stop(): void
  /**
   * A token valid now, refreshing first if needed (sharing a refresh in flight in any tab);
   * null when signed out. Throws `TokenUnavailableError` when none can be had in time.
   */
  getToken(options?: GetTokenOptions): Promise<string | null>
  getState(): SessionState
  /** Calls `listener` on every state change; returns the unsubscribe function. */
  subscribe(listener: (state: SessionState) => void): () => void
  /**
   * Adopts a token obtained elsewhere and shares it with the other tabs. Throws `TokenError`
   * when malformed; returns false (and changes nothing) when it is older than the one held.
   */
  setToken(jwt: string): boolean
  /** Ends the session here and in every tab. */
  signOut(): void
  /** `fetch` with `Authorization: Bearer <token>`; on a 401, one forced refresh and one retry. */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>
  /** Counters for diagnostics and benchmarks. */
  getStats(): Readonly<SessionStats>
}

/**
 * The browser half of session-keeper: keeps the Clerk session JWT valid in this tab and every
 * other tab of the origin, refreshing it through your proxy (`session-keeper/server`) once per
 * token lifetime, whatever the number of tabs. Nothing happens until `start()`.
 *
 * - `getToken()` answers a valid token (waiting, bounded, for a refresh in flight), `null` when
 *   signed out, or throws `TokenUnavailableError` with the reason.
 * - Only a 401 `session_ended` signs out; a 409 `recovery_required` keeps the token and calls
 *   `onRecoveryRequired`; a 503 `not_yet_expired` switches every tab to refreshing at expiry.
 *
 * @example
 * const keeper = createSessionKeeper({ endpoint: '/api/session/refresh', onRecoveryRequired: () => location.reload() })
 * keeper.start()
 * const response = await keeper.fetch('/api/orders') // Authorization: Bearer <token>
 */
export function createSessionKeeper(options: SessionKeeperOptions): SessionKeeper {
  if (typeof options?.endpoint !== 'string' || options.endpoint === '') {
    throw new TypeError('createSessionKeeper: `endpoint` must be the URL of the refresh proxy')
  }
  const o = resolveOptions(options)
  const transport = createTransport({ endpoint: o.endpoint, fetch: o.fetch, timeoutMs: o.requestTimeoutMs, headers: o.headers })
  const agent = new Agent(o, randomId(), transport)

  function stop(): void {
    agent.stop()
  }

  async function getToken({ forceRefresh = false }: GetTokenOptions = {}): Promise<string | null> {
    if (!agent.state.running) throw new NotStartedError('Call start() before getToken()')
    await agent.ready
    const deadline = o.clock.now() + o.getTokenTimeoutMs
    let refreshed = false
    if (forceRefresh && agent.state.held) {
      // Wait for this refresh to finish (bounded), not merely for the next change of state.
      let finished = false
      void agent.refresh('force').finally(() => {
        finished = true
        agent.changes.notify()
      })
      await agent.changes.until(() => finished, o.getTokenTimeoutMs)
      refreshed = true
    }
    for (;;) {
      const state = agent.state
      if (!state.running) throw new NotStartedError('The keeper was stopped')
      const now = o.clock.now()
      if (state.signedOut || state.held === null) return null
      // A token whose age contradicts the clock gets one refresh before it is trusted.
      if (isUsable(state, now) && (refreshed || !state.suspect)) {
        if (isDue(state, now, o.refreshMarginMs)) agent.check() // refresh in the background; this token is still valid
        return state.held.token.raw
      }
      const recovery = recoveryError(state)
      const notBefore = retryAt(state)
      const unavailable = (why: string) => new TokenUnavailableError(why, { cause: recovery ?? state.error ?? undefined })
      if (recovery) throw unavailable('The token has expired and the proxy cannot refresh it: the page must go through Clerk (reload)')
      if (!o.environment.isOnline()) throw unavailable('Offline: no valid token and no way to refresh one')
      if (notBefore > deadline) throw unavailable(`No valid token: ${state.error?.message ?? 'refresh failed'}`)
      if (now >= deadline) throw unavailable(`No valid token within ${o.getTokenTimeoutMs} ms`)
      // Refreshing at expiry, the token may look expired (its earliest expiry) a moment before
      // the refresh is due (its latest): wait for that moment rather than ask for nothing.
      const due = dueAt(state, now, o.refreshMarginMs) ?? now
      if (now < notBefore) await agent.changes.next(notBefore - now)
      else if (now < due) await agent.changes.next(Math.min(due, deadline) - now)
      else {
        await Promise.race([agent.refresh('demand'), agent.changes.next(deadline - now)])
        // Nothing to show for it (the lock went to a tab whose answer is still on its way): pause.
        if (!isUsable(agent.state, o.clock.now()) && o.clock.now() >= retryAt(agent.state)) await agent.changes.next(50)
      }
      refreshed = true
    }
  }

  async function authFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const request = new Request(input, init)
    // The token goes only where it is meant to: this page's origin and `authorizedOrigins`.
    if (!tokenMayGoTo(request.url)) return o.fetch(request)
    const spare = request.clone()
    const token = await getToken()
    if (token) request.headers.set('Authorization', `Bearer ${token}`)
    const response = await o.fetch(request)
    if (response.status !== 401 || token === null) return response
    const fresh = await getToken({ forceRefresh: true }).catch(() => null)
    if (fresh === null || fresh === token) return response
    spare.headers.set('Authorization', `Bearer ${fresh}`)
    return o.fetch(spare)
  }

  function tokenMayGoTo(url: string): boolean {
    const origin = new URL(url).origin
    const own = typeof location === 'undefined' ? null : location.origin
    return origin === own || o.authorizedOrigins.includes(origin)
  }

  return {
    start() {
      agent.start()
      return stop
    },
    stop,
    getToken,
    getState: () => agent.publicState(),
    subscribe: (listener) => agent.store.subscribe(listener),
    setToken(jwt) {
      decodeSessionToken(jwt) // a malformed token throws `TokenError` here, and changes nothing
      const before = agent.state.held
      agent.dispatch({ type: 'found', raw: jwt, source: 'setToken' })
      const held = agent.state.held
      if (held === before || held?.token.raw !== jwt) return false
      agent.check()
      return true
    },
    signOut: () => agent.dispatch({ type: 'session-ended', error: null, broadcast: true }),
    fetch: authFetch,
    getStats: () => agent.stats,
  }
}

function resolveOptions(options: SessionKeeperOptions): ResolvedOptions {
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000
  const cookieName = options.cookieName ?? '__session'
  const globalFetch: FetchLike = (input, init) => fetch(input, init)
  return {
    ...options,
    cookieName,
    requestTimeoutMs,
    retryBaseDelayMs: options.retryBaseDelayMs ?? 1_000,
    retryMaxDelayMs: options.retryMaxDelayMs ?? 30_000,
    getTokenTimeoutMs: options.getTokenTimeoutMs ?? 10_000,
    lockTimeoutMs: options.lockTimeoutMs ?? requestTimeoutMs + 2_000,
    handoffWaitMs: options.handoffWaitMs ?? 300,
    helloWaitMs: options.helloWaitMs ?? 100,
    channelName: options.channelName ?? `${options.endpoint}|${cookieName}`,
    headers: options.headers ?? {},
    fetch: options.fetch ?? globalFetch,
    clock: options.clock ?? systemClock,
    random: options.random ?? Math.random,
    channel: options.channel ?? browserChannel,
    environment: options.environment ?? browserEnvironment(),
    authorizedOrigins: (options.authorizedOrigins ?? []).map((origin) => new URL(origin).origin),
    acceptOtherSessionsFromTabs: options.acceptOtherSessionsFromTabs ?? false,
  }
}

/** Tab ids must differ even when tests inject a constant `random`, so they use their own source. */
function randomId(): string {
  // `getRandomValues`, unlike `randomUUID`, is there outside secure contexts too (a page on http://).
  return Array.from(crypto.getRandomValues(new Uint32Array(3)), (n) => n.toString(36)).join('')
}
