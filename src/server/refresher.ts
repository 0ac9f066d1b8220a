import type { SessionToken } from '../core/token.js'
import { ProxyError, recoveryRequired } from './errors.js'
import type { StoreSecrets } from './secrets.js'
import type { RefreshStore } from './store.js'
import type { RefreshSessionRequestBody, Upstream, UpstreamResult } from './upstream.js'

export type EarlyRefresh = 'auto' | 'always' | 'never'

export interface RateLimits {
  /** Upstream calls per session per window. @default 20 */
  perSession?: number
  /** Upstream calls per client IP per window (behind a proxy without `trustProxy`, the proxy's). @default 120 */
  perClient?: number
  /** @default 60_000 */
  windowMs?: number
}

export interface RefresherDeps {
  upstream: Upstream
  store: RefreshStore
  secrets: StoreSecrets
  now: () => number
  earlyRefresh: EarlyRefresh
  limits: Required<RateLimits> | null
  random: () => number
}

export interface RefreshJob {
  sessionId: string
  token: SessionToken
  /** Every refresh cookie the browser sent under Clerk's name (more than one when one was tossed). */
  credentials: string[]
  body: Omit<RefreshSessionRequestBody, 'refresh_token'>
  suffixedCookies: boolean
  clientIp: string | undefined
}

export interface RefreshOutcome {
  result: UpstreamResult
  /** Answered from the store: the same token an earlier request got. */
  replayed: boolean
  /** Shared another request's upstream call. */
  coalesced: boolean
}

/** Store keys: namespaced and versioned, never a raw token or cookie. */
const KEYS = { replay: 'sk:v1:replay:', limit: 'sk:v1:limit:', early: 'sk:v1:early-refresh' }
/** How long "Clerk refuses early refreshes" is believed before one request asks again. */
const EARLY_LEARNED_MS = 3_600_000
/** The store is asked what was learned at most this often per process. */
const EARLY_CACHE_MS = 10_000
const MAX_RETRY_AFTER_S = 3_600

/**
 * Everything between a verified request and Clerk: idempotent replay of earlier results, the
 * early-refresh policy, rate limits, coalescing of identical requests, and the tossed-cookie
 * fallback. Clerk refreshes each expired token once; this makes sure that once is never wasted.
 */
export function createRefresher(deps: RefresherDeps) {
  const { store, secrets, now } = deps
  const inflight = new Map<string, Promise<UpstreamResult>>()
  let early: { refuses: boolean; checkedAt: number } = { refuses: false, checkedAt: -Infinity }

  const replayKey = async (job: RefreshJob, credential: string) =>
    KEYS.replay + (await secrets.hash(job.sessionId, job.token.raw, credential))

  async function replay(job: RefreshJob): Promise<UpstreamResult | null> {
    for (const credential of job.credentials) {
      const key = await replayKey(job, credential)
      const sealed = await store.get(key)
      const plain = sealed === null ? null : await secrets.open(sealed, key)
      if (plain !== null) return JSON.parse(plain) as UpstreamResult
    }
    return null
  }

  async function remember(job: RefreshJob, credential: string, result: UpstreamResult): Promise<void> {
    const key = await replayKey(job, credential)
    const ttlMs = Math.max(60_000, 2 * job.token.lifetimeMs)
    await store.set(key, await secrets.seal(JSON.stringify(result), key), ttlMs)
  }

  async function refusesEarly(): Promise<boolean> {
    if (deps.earlyRefresh !== 'auto') return deps.earlyRefresh === 'never'
    if (now() - early.checkedAt > EARLY_CACHE_MS) {
      early = { refuses: (await store.get(KEYS.early)) === 'refused', checkedAt: now() }
    }
    return early.refuses
  }

  async function learnEarly(refuses: boolean): Promise<void> {
    if (deps.earlyRefresh !== 'auto' || early.refuses === refuses) return
    early = { refuses, checkedAt: now() }
    if (refuses) await store.set(KEYS.early, 'refused', EARLY_LEARNED_MS)
    else await store.delete(KEYS.early)
  }

  function notYetExpired(job: RefreshJob): ProxyError {
    const msLeft = job.token.expiresAt * 1000 - now()
    const seconds = Math.min(Math.ceil(msLeft / 1000), Math.ceil(job.token.lifetimeMs / 1000), MAX_RETRY_AFTER_S)
    return new ProxyError(503, 'not_yet_expired', 'Clerk refreshes this token only once it has expired', {
      'Retry-After': String(Math.max(1, seconds)),
    })
  }

  async function checkLimits(job: RefreshJob): Promise<void> {
    const limits = deps.limits
    if (!limits) return
    const window = Math.floor(now() / limits.windowMs)
    const checks: [string, number][] = [[`s:${job.sessionId}`, limits.perSession]]
    if (job.clientIp) checks.push([`c:${job.clientIp}`, limits.perClient])
    for (const [subject, max] of checks) {
      const key = `${KEYS.limit}${await secrets.hash(subject)}:${window}`
      if ((await store.increment(key, limits.windowMs)) > max) {
        const left = (window + 1) * limits.windowMs - now()
        // Spread: clients refused together must not all come back in the same second.
        const seconds = Math.ceil(left / 1000) + Math.floor(deps.random() * 5)
        throw new ProxyError(429, 'rate_limited', 'Too many refreshes; retry later', { 'Retry-After': String(seconds) }, 'proxy_limit')
      }
    }
  }

  async function call(job: RefreshJob): Promise<UpstreamResult> {
    // Not the browser request's signal: a client that goes away must not cancel a call others share.
    const signal = new AbortController().signal
    for (const [index, credential] of job.credentials.entries()) {
      try {
        const result = await deps.upstream(job.sessionId, { ...job.body, refresh_token: credential }, signal, {
          suffixedCookies: job.suffixedCookies,
        })
        await remember(job, credential, result).catch(() => {})
        return result
      } catch (error) {
        // A cookie tossed onto the parent domain by a sibling subdomain: try the next one.
        const unknown = error instanceof ProxyError && error.reason === 'refresh_token_not_found'
        if (!unknown || index === job.credentials.length - 1) throw error
      }
    }
    throw new Error('unreachable')
  }

  async function refine(error: unknown, job: RefreshJob): Promise<UpstreamResult> {
    if (!(error instanceof ProxyError)) throw error
    if (error.reason === 'session_refresh_expired_session_token_consumed') {
      // Refreshed before, maybe by a request whose answer was lost: the result may be stored.
      const stored = await replay(job).catch(() => null)
      if (stored) return stored
      throw recoveryRequired('token_consumed', 'This token was already refreshed and its result is gone')
    }
    if (error.reason === 'session_refresh_session_token_ineligible' && job.token.expiresAt * 1000 > now()) {
      await learnEarly(true).catch(() => {})
      throw notYetExpired(job)
    }
    throw error
  }

  return async function refresh(job: RefreshJob): Promise<RefreshOutcome> {
    const stored = await replay(job).catch(() => null)
    if (stored) return { result: stored, replayed: true, coalesced: false }
    const unexpired = job.token.expiresAt * 1000 > now()
    if (unexpired && (await refusesEarly().catch(() => false))) throw notYetExpired(job)

    const key = await secrets.hash(job.sessionId, job.token.raw, ...job.credentials)
    let shared = inflight.get(key)
    const coalesced = shared !== undefined
    if (!shared) {
      shared = checkLimits(job)
        .then(() => call(job))
        .catch((error: unknown) => refine(error, job))
        .finally(() => inflight.delete(key))
      inflight.set(key, shared)
    }
    const result = await shared
    if (unexpired && !coalesced) await learnEarly(false).catch(() => {})
    return { result, replayed: false, coalesced }
  }
}
