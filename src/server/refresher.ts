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

/** Calls to Clerk allowed per window across every instance sharing the store. */
export interface UpstreamBudget {
  max: number
  windowMs: number
}

export interface RefresherDeps {
  upstream: Upstream
  secrets: StoreSecrets
  now: () => number
  earlyRefresh: EarlyRefresh
  limits: Required<RateLimits> | null
  budget: UpstreamBudget | null
  random: () => number
  /** A claim on a refresh lives this long: past it, another instance takes over. */
  claimTtlMs: number
}

export interface RefreshJob {
  sessionId: string
  token: SessionToken
  /** Every refresh cookie the browser sent under Clerk's name (more than one when one was tossed). */
  credentials: string[]
  body: Omit<RefreshSessionRequestBody, 'refresh_token'>
  suffixedCookies: boolean
  clientIp: string | undefined
  /** The store, as seen by this request (failures of a shared store are reported on it). */
  store: RefreshStore
}

export interface RefreshOutcome {
  result: UpstreamResult
  /** Answered from the store: the same token an earlier request got. */
  replayed: boolean
  /** Shared another request's upstream call. */
  coalesced: boolean
}

/** Store keys: namespaced and versioned, never a raw token or cookie. */
const KEYS = {
  replay: 'sk:v1:replay:',
  limit: 'sk:v1:limit:',
  budget: 'sk:v1:budget:',
  early: 'sk:v1:early-refresh',
  claim: 'sk:v1:claim:',
  failure: 'sk:v1:failure:',
}
/** Instances waiting on another's claim look for its result this often. */
const CLAIM_POLL_MS = 50
/** Another instance's failure is answered to the requests that waited on it for this long. */
const FAILURE_TTL_MS = 3_000
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
  const { secrets, now } = deps
  const instance = `${now().toString(36)}.${Math.floor(deps.random() * 2 ** 32).toString(36)}`
  const inflight = new Map<string, Promise<{ result: UpstreamResult; replayed: boolean }>>()
  let early: { refuses: boolean; checkedAt: number } = { refuses: false, checkedAt: -Infinity }

  const replayKey = async (job: RefreshJob, credential: string) =>
    KEYS.replay + (await secrets.hash(job.sessionId, job.token.raw, credential))

  async function replay(job: RefreshJob): Promise<UpstreamResult | null> {
    for (const credential of job.credentials) {
      const key = await replayKey(job, credential)
      const sealed = await job.store.get(key)
      const plain = sealed === null ? null : await secrets.open(sealed, key)
      if (plain !== null) return JSON.parse(plain) as UpstreamResult
    }
    return null
  }

  async function remember(job: RefreshJob, credential: string, result: UpstreamResult): Promise<void> {
    const key = await replayKey(job, credential)
    const ttlMs = Math.max(60_000, 2 * job.token.lifetimeMs)
    await job.store.set(key, await secrets.seal(JSON.stringify(result), key), ttlMs)
  }

  async function refusesEarly(store: RefreshStore): Promise<boolean> {
    if (deps.earlyRefresh !== 'auto') return deps.earlyRefresh === 'never'
    if (now() - early.checkedAt > EARLY_CACHE_MS) {
      early = { refuses: (await store.get(KEYS.early)) === 'refused', checkedAt: now() }
    }
    return early.refuses
  }

  async function learnEarly(store: RefreshStore, refuses: boolean): Promise<void> {
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

  /** Fixed-window counters in the store; past one, 429 with a spread `Retry-After`. */
  async function over(
    job: RefreshJob,
    prefix: string,
    subject: string,
    max: number,
    windowMs: number,
    spreadS: number,
    reason: string,
  ): Promise<void> {
    const window = Math.floor(now() / windowMs)
    const key = `${prefix}${await secrets.hash(subject)}:${window}`
    if ((await job.store.increment(key, windowMs)) <= max) return
    const left = (window + 1) * windowMs - now()
    // Spread: clients refused together must not all come back in the same second.
    const seconds = Math.ceil(left / 1000) + Math.floor(deps.random() * spreadS)
    throw new ProxyError(429, 'rate_limited', 'Too many refreshes; retry later', { 'Retry-After': String(seconds) }, reason)
  }

  async function checkLimits(job: RefreshJob): Promise<void> {
    const { limits, budget } = deps
    if (limits) {
      await over(job, KEYS.limit, `s:${job.sessionId}`, limits.perSession, limits.windowMs, 5, 'proxy_limit')
      if (job.clientIp) await over(job, KEYS.limit, `c:${job.clientIp}`, limits.perClient, limits.windowMs, 5, 'proxy_limit')
    }
    // The whole app's share of Clerk's instance-wide quota, across every proxy instance.
    if (budget) await over(job, KEYS.budget, 'budget', budget.max, budget.windowMs, Math.ceil(budget.windowMs / 1000), 'upstream_budget')
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
    const store = job.store
    if (error.reason === 'session_refresh_expired_session_token_consumed') {
      // Refreshed before, maybe by a request whose answer was lost: the result may be stored.
      const stored = await replay(job).catch(() => null)
      if (stored) return stored
      throw recoveryRequired('token_consumed', 'This token was already refreshed and its result is gone')
    }
    if (error.reason === 'session_refresh_session_token_ineligible' && job.token.expiresAt * 1000 > now()) {
      await learnEarly(store, true).catch(() => {})
      throw notYetExpired(job)
    }
    throw error
  }

  /**
   * One upstream call for this refresh across every instance sharing the store: the instance that
   * claims it calls Clerk; the others wait for its result (or its failure) in the store. A claim
   * expires after `claimTtlMs`, so an instance that died mid-call is taken over in time. With the
   * store down, the in-memory fallback grants every claim: each instance works alone.
   */
  async function coordinate(job: RefreshJob, key: string): Promise<{ result: UpstreamResult; replayed: boolean }> {
    const claimKey = KEYS.claim + key
    const failureKey = KEYS.failure + key
    const giveUpAt = now() + 3 * deps.claimTtlMs
    while (now() < giveUpAt) {
      if (await job.store.set(claimKey, instance, deps.claimTtlMs, { onlyIfAbsent: true })) {
        try {
          // Another instance may have finished (stored, then released its claim) between our
          // look in the store and our claim.
          const stored = await replay(job)
          if (stored) return { result: stored, replayed: true }
          await checkLimits(job)
          return { result: await call(job).catch((error: unknown) => refine(error, job)), replayed: false }
        } catch (error) {
          if (error instanceof ProxyError && error.reason !== 'proxy_limit') {
            const { status, code, message, headers, reason } = error
            await job.store.set(failureKey, JSON.stringify({ status, code, message, headers, reason }), FAILURE_TTL_MS).catch(() => {})
          }
          throw error
        } finally {
          await job.store.delete(claimKey).catch(() => {})
        }
      }
      // Another instance is on it.
      while (now() < giveUpAt) {
        await new Promise((resolve) => setTimeout(resolve, CLAIM_POLL_MS))
        const stored = await replay(job)
        if (stored) return { result: stored, replayed: true }
        const failure = await job.store.get(failureKey)
        if (failure !== null) {
          const f = JSON.parse(failure) as Pick<ProxyError, 'status' | 'code' | 'message' | 'headers' | 'reason'>
          throw new ProxyError(f.status, f.code, f.message, f.headers, f.reason)
        }
        if ((await job.store.get(claimKey)) === null) break // gone without a result: take over
      }
    }
    throw new ProxyError(503, 'upstream_unavailable', 'The refresh did not complete in time', { 'Retry-After': '2' })
  }

  return async function refresh(job: RefreshJob): Promise<RefreshOutcome> {
    const stored = await replay(job).catch(() => null)
    if (stored) return { result: stored, replayed: true, coalesced: false }
    const unexpired = job.token.expiresAt * 1000 > now()
    if (unexpired && (await refusesEarly(job.store).catch(() => false))) throw notYetExpired(job)

    const key = await secrets.hash(job.sessionId, job.token.raw, ...job.credentials)
    let shared = inflight.get(key)
    const coalesced = shared !== undefined
    if (!shared) {
      shared = coordinate(job, key).finally(() => inflight.delete(key))
      inflight.set(key, shared)
    }
    const { result, replayed: waited } = await shared
    if (unexpired && !coalesced && !waited) await learnEarly(job.store, false).catch(() => {})
    // Joined a call in this process, or waited on another instance's: coalesced either way.
    return { result, replayed: false, coalesced: coalesced || waited }
  }
}
