import type { Environment, LockManagerLike, WakeReason } from '../../src/index.js'
import { claimsOf, sessionJwt } from './jwt.js'

/** A page whose visibility, focus, network and cookies the test controls. */
export class FakeEnvironment implements Environment {
  visible = true
  focused = true
  online = true
  cookies = new Map<string, string>()
  /** Events dispatched on `window`, in order. */
  dispatched: { type: string; detail: unknown }[] = []
  #listeners = new Set<(reason: WakeReason) => void>()

  isVisible = () => this.visible
  hasFocus = () => this.focused
  isOnline = () => this.online
  readCookie = (name: string) => this.cookies.get(name) ?? null
  deleteCookie = (name: string) => void this.cookies.delete(name)
  dispatch = (type: string, detail: unknown) => void this.dispatched.push({ type, detail })
  listen = (onWake: (reason: WakeReason) => void) => {
    this.#listeners.add(onWake)
    return () => void this.#listeners.delete(onWake)
  }

  get listenerCount(): number {
    return this.#listeners.size
  }

  emit(reason: WakeReason): void {
    if (reason === 'online') this.online = true
    if (reason === 'offline') this.online = false
    for (const listener of [...this.#listeners]) listener(reason)
  }
}

/** The proxy's wire codes for the statuses a script names (the README's wire protocol). */
const WIRE_CODES: Record<number, string> = {
  400: 'invalid_request',
  401: 'session_ended',
  403: 'origin_not_allowed',
  409: 'recovery_required',
  429: 'rate_limited',
  502: 'upstream_bad_response',
  503: 'upstream_unavailable',
  504: 'upstream_timeout',
}

export interface ProxyCall {
  sessionId: string
  token: string
  at: number
}

/**
 * The refresh proxy as a `fetch` function. Issues tokens on the server clock
 * (`Date.now() + skewMs`); `script` queues outcomes for the next calls.
 */
export class FakeProxy {
  calls: ProxyCall[] = []
  skewMs = 0
  lifetimeS = 60
  latencyMs = 20
  /** Outcomes for the next calls, in order: a status, a Response factory, or 'hang'. */
  script: (number | 'hang' | 'network' | (() => Response))[] = []
  retryAfter: string | null = null
  /** Called with each issued token, as a browser's cookie jar would receive Set-Cookie. */
  onIssue: (jwt: string) => void = () => {}
  /** As a proxy in front of a Clerk that refuses early refreshes: 503 `not_yet_expired` until exp. */
  refuseUnexpired = false
  /** Answers refused as not yet expired. */
  refusedEarly = 0
  #issued = 0
  /** Tokens that reached the proxy after their expiry (server clock), for the at-expiry mode. */
  expiredOnArrival = 0
  /** Until `until` (ms, local clock), every call gets `answer()` instead of a token: an outage. */
  outage: { until: number; answer: () => Response | 'network' | 'hang' } | null = null

  fetch = async (input: Request | string | URL, init?: RequestInit): Promise<Response> => {
    const request = input instanceof Request ? input : new Request(String(input), init)
    const body = (await request.json()) as { session_id: string; expired_token: string }
    this.calls.push({ sessionId: body.session_id, token: body.expired_token, at: Date.now() })
    if (this.latencyMs) await new Promise((resolve) => setTimeout(resolve, this.latencyMs))
    const outage = this.outage && Date.now() < this.outage.until ? this.outage.answer() : undefined
    const next = outage ?? this.script.shift()
    if (next === 'hang') return new Promise<Response>(() => {})
    if (next === 'network') throw new TypeError('Failed to fetch')
    if (typeof next === 'function') return next()
    if (next instanceof Response) return next
    if (typeof next === 'number') {
      const headers: Record<string, string> = { 'content-type': 'application/json', date: new Date(Date.now() + this.skewMs).toUTCString() }
      if (this.retryAfter !== null) headers['retry-after'] = this.retryAfter
      const code = WIRE_CODES[next] ?? `status_${next}`
      return new Response(JSON.stringify({ error: { code, message: 'scripted failure' } }), { status: next, headers })
    }
    const serverNow = Date.now() + this.skewMs
    const exp = claimsOf(body.expired_token).exp * 1000
    if (this.refuseUnexpired && exp > serverNow) {
      this.refusedEarly++
      const headers = { 'content-type': 'application/json', 'retry-after': String(Math.ceil((exp - serverNow) / 1000) + 1) }
      return new Response(JSON.stringify({ error: { code: 'not_yet_expired', message: 'refused before expiry' } }), {
        status: 503,
        headers,
      })
    }
    if (exp <= serverNow) this.expiredOnArrival++
    // Each issued token is unique (as Clerk's are, with their `jti`), even within one second.
    const jwt = sessionJwt(serverNow, { sid: body.session_id, lifetimeS: this.lifetimeS, jti: `jti_${++this.#issued}` })
    this.onIssue(jwt)
    return Response.json({ jwt })
  }
}

/**
 * Web Locks in memory, shared by the tabs of one test. `crash(tab)` frees what a tab held, as
 * the browser does when a tab dies; a frozen tab simply never finishes its callback.
 */
export class FakeLocks {
  /** Which tab was granted a lock, in order (`ifAvailable` answered null is not a grant). */
  readonly grants: string[] = []
  /** A lock let go reaches the next in line after this (ms); a browser's is an IPC hop away. */
  handOverMs = 0
  #held = new Map<string, string>()
  #queue = new Map<string, (() => void)[]>()
  #stolen = new Set<string>()

  forTab(tab: string): LockManagerLike {
    return {
      request: async (name, options, callback) => {
        if (options.ifAvailable && this.#held.has(name)) return callback(null)
        if (options.steal) {
          this.#held.set(name, tab)
          this.#stolen.add(name)
        } else {
          await this.#acquire(name, tab, options.signal)
        }
        this.grants.push(tab)
        try {
          return await callback({ name })
        } finally {
          if (this.#held.get(name) === tab) this.#release(name)
        }
      },
    }
  }

  holder(name: string): string | undefined {
    return this.#held.get(name)
  }

  crash(tab: string): void {
    for (const [name, holder] of this.#held) if (holder === tab) this.#release(name)
  }

  #acquire(name: string, tab: string, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted()
    if (!this.#held.has(name)) {
      this.#held.set(name, tab)
      return Promise.resolve()
    }
    return new Promise((resolve, reject) => {
      const queue = this.#queue.get(name) ?? []
      const grant = () => {
        signal?.removeEventListener('abort', onAbort)
        this.#held.set(name, tab)
        resolve()
      }
      const onAbort = () => {
        queue.splice(queue.indexOf(grant), 1)
        reject(signal!.reason)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      queue.push(grant)
      this.#queue.set(name, queue)
    })
  }

  #release(name: string): void {
    this.#held.delete(name)
    if (this.handOverMs === 0) this.#queue.get(name)?.shift()?.()
    else setTimeout(() => this.#held.has(name) || this.#queue.get(name)?.shift()?.(), this.handOverMs)
  }
}
