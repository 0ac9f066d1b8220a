import { systemClock } from '../core/clock.js'
import { browserEnvironment } from '../core/environment.js'
import { decodeSessionToken } from '../core/token.js'
import { createTransport, type FetchLike } from '../core/transport.js'
import type { AnySessionKeeperError } from '../errors/AnySessionKeeperError.js'
import { NotStartedError } from '../errors/NotStartedError.js'
import { TokenUnavailableError } from '../errors/TokenUnavailableError.js'
import { browserChannel, TabChannel } from '../tabs/channel.js'
import { ChannelLock } from '../tabs/channelLock.js'
import { browserLocks, soloLocks } from '../tabs/locks.js'
import { adoptFound, readCookie, shareHeld } from './adoption.js'
import { Agent } from './agent.js'
import { DELAYS } from './delays.js'
import { receive } from './receive.js'
import type { ResolvedOptions, SessionKeeperOptions } from './options.js'
import type { SessionState, SessionStats } from './state.js'

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
  const tabId = randomId()
  const transport = createTransport({ endpoint: o.endpoint, fetch: o.fetch, timeoutMs: o.requestTimeoutMs, headers: o.headers })
  const agent = new Agent(o, tabId, transport)
  let teardown: (() => void) | null = null
  let ready: Promise<void> = Promise.resolve()

  function start(): () => void {
    if (teardown) return stop
    agent.setRunning(true)
    const opened = o.channel(`session-keeper:v1:${o.channelName}`)
    const channel = opened ? new TabChannel(opened, tabId) : null
    agent.channel = channel
    const chosen = o.locks === undefined ? browserLocks() : o.locks
    agent.locks = chosen ?? (channel ? new ChannelLock(channel, o.clock, o.random) : soloLocks)
    const offMessages = channel?.on((message) => receive(agent, message))
    // A cookie change is looked at a moment later: when it is a refresh answer's Set-Cookie, the
    // token arrives first, measured, over the channel or as the answer itself.
    const offEvents = o.environment.listen((reason) =>
      reason === 'cookie' ? void o.clock.setTimeout(() => agent.check(), DELAYS.cookieSettleMs) : agent.check(),
    )
    teardown = () => {
      offMessages?.()
      offEvents()
      channel?.close()
      agent.channel = null
      agent.setRunning(false)
    }

    readInitialToken()
    channel?.post({ type: 'hello' })
    // Without a fresh token of our own, give the other tabs a moment to share theirs.
    const fresh = () => agent.isUsable() && !agent.isDue()
    ready = (channel && !fresh() ? agent.changes.until(fresh, o.helloWaitMs) : Promise.resolve()).then(() => agent.finishLoading())
    return stop
  }

  function readInitialToken(): void {
    if (o.initialToken === undefined) return readCookie(agent)
    try {
      const raw = typeof o.initialToken === 'function' ? o.initialToken() : o.initialToken
      if (raw !== null && raw !== undefined) adoptFound(agent, raw, 'startup')
    } catch (error) {
      agent.apply({ type: 'error', error: error as AnySessionKeeperError })
    }
  }

  function stop(): void {
    teardown?.()
    teardown = null
  }

  async function getToken({ forceRefresh = false }: GetTokenOptions = {}): Promise<string | null> {
    if (!agent.running) throw new NotStartedError('Call start() before getToken()')
    await ready
    const deadline = o.clock.now() + o.getTokenTimeoutMs
    let refreshed = false
    if (forceRefresh && agent.held) {
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
      if (!agent.running) throw new NotStartedError('The keeper was stopped')
      const now = o.clock.now()
      if (agent.signedOut || agent.held === null) return null
      // A token whose age contradicts the clock gets one refresh before it is trusted.
      if (agent.isUsable(now) && (refreshed || !agent.suspect)) {
        if (agent.isDue(now)) agent.check() // refresh in the background; this token is still valid
        return agent.held.token.raw
      }
      const unavailable = (why: string) => new TokenUnavailableError(why, { cause: agent.recoveryError ?? agent.lastError ?? undefined })
      if (agent.recoveryError)
        throw unavailable('The token has expired and the proxy cannot refresh it: the page must go through Clerk (reload)')
      if (!o.environment.isOnline()) throw unavailable('Offline: no valid token and no way to refresh one')
      if (agent.retryAt > deadline) throw unavailable(`No valid token: ${agent.lastError?.message ?? 'refresh failed'}`)
      if (now >= deadline) throw unavailable(`No valid token within ${o.getTokenTimeoutMs} ms`)
      if (now < agent.retryAt) await agent.changes.next(agent.retryAt - now)
      else {
        await Promise.race([agent.refresh('demand'), agent.changes.next(deadline - now)])
        // Nothing to show for it (the lock went to a tab whose answer is still on its way): pause.
        if (!agent.isUsable() && o.clock.now() >= agent.retryAt) await agent.changes.next(50)
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
    start,
    stop,
    getToken,
    getState: () => agent.store.get(),
    subscribe: (listener) => agent.store.subscribe(listener),
    setToken(jwt) {
      agent.forgetEnded(decodeSessionToken(jwt).sessionId)
      if (!adoptFound(agent, jwt, 'setToken')) return false
      shareHeld(agent, 'set')
      agent.check()
      return true
    },
    signOut: () => agent.apply({ type: 'session-ended', error: null, broadcast: true }),
    fetch: authFetch,
    getStats: () => ({ ...agent.stats, messagesIgnored: agent.stats.messagesIgnored + (agent.channel?.ignored ?? 0) }),
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
  if (typeof crypto !== 'undefined' && typeof crypto.randomUUID === 'function') return crypto.randomUUID().slice(0, 18)
  return Array.from({ length: 3 }, () => Math.floor(Math.random() * 2 ** 32).toString(36)).join('')
}
