import { ProxyError } from './errors.js'
import type { RefreshJob, RefreshOutcome } from './job.js'
import { STORE_KEYS } from './keys.js'
import type { StoreSecrets } from './secrets.js'
import type { RefreshStore } from './store.js'
import type { UpstreamResult } from './upstream.js'

export interface ClaimsDeps {
  secrets: StoreSecrets
  now: () => number
  random: () => number
  /** A claim on a refresh lives this long: past it, another instance takes over. */
  claimTtlMs: number
  /** Longest a request waits for other instances before it gives up with a 503. */
  patienceMs: number
}

/** What one refresh needs from the caller: where its result may already be, and how to get it. */
export interface ClaimWork {
  /** A result stored by whoever refreshed first (this or another instance), or null. */
  lookup(): Promise<UpstreamResult | null>
  /** The call itself; runs only in the instance holding the claim. */
  run(): Promise<UpstreamResult>
}

/** Instances waiting on another's claim look for its result this often. */
const CLAIM_POLL_MS = 50
/** Another instance's failure is answered to the requests that waited on it for this long. */
const FAILURE_TTL_MS = 3_000

type Shared = { result: UpstreamResult; waited: boolean }
type StoredFailure = Pick<ProxyError, 'status' | 'code' | 'message' | 'headers' | 'reason'>

/**
 * One upstream call per refresh (same session, token and refresh cookies): identical requests in
 * this process share one promise (coalescing), and across the instances sharing the store the
 * instance that claims the refresh calls Clerk while the others wait for its result (or its
 * failure) in the store. A claim expires after `claimTtlMs`, so an instance that died mid-call is
 * taken over in time. With the store down, the in-memory fallback grants every claim: each
 * instance works alone.
 */
export function createClaims(deps: ClaimsDeps): (job: RefreshJob, work: ClaimWork) => Promise<RefreshOutcome> {
  const { now } = deps
  const instance = `${now().toString(36)}.${Math.floor(deps.random() * 2 ** 32).toString(36)}`
  const inflight = new Map<string, Promise<Shared>>()

  async function coordinate(store: RefreshStore, key: string, work: ClaimWork): Promise<Shared> {
    const claimKey = STORE_KEYS.claim + key
    const failureKey = STORE_KEYS.failure + key
    const giveUpAt = now() + deps.patienceMs
    while (now() < giveUpAt) {
      if (await store.set(claimKey, instance, deps.claimTtlMs, { onlyIfAbsent: true })) {
        try {
          // Another instance may have finished (stored, then released its claim) between our
          // look in the store and our claim.
          const stored = await work.lookup()
          if (stored) return { result: stored, waited: true }
          return { result: await work.run(), waited: false }
        } catch (error) {
          // A limit of this request's own session or client is not the others' answer.
          if (error instanceof ProxyError && error.reason !== 'proxy_limit') {
            const { status, code, message, headers, reason } = error
            const failure: StoredFailure = { status, code, message, headers, reason }
            await store.set(failureKey, JSON.stringify(failure), FAILURE_TTL_MS).catch(() => {})
          }
          throw error
        } finally {
          await store.delete(claimKey).catch(() => {})
        }
      }
      // Another instance is on it.
      while (now() < giveUpAt) {
        await new Promise((resolve) => setTimeout(resolve, CLAIM_POLL_MS))
        const stored = await work.lookup()
        if (stored) return { result: stored, waited: true }
        const failure = await store.get(failureKey)
        if (failure !== null) {
          const f = JSON.parse(failure) as StoredFailure
          throw new ProxyError(f.status, f.code, f.message, f.headers, f.reason)
        }
        if ((await store.get(claimKey)) === null) break // gone without a result: take over
      }
    }
    throw new ProxyError(503, 'upstream_unavailable', 'The refresh did not complete in time', { 'Retry-After': '2' })
  }

  return async function once(job, work) {
    const key = await deps.secrets.hash(job.sessionId, job.token.raw, ...job.credentials)
    let shared = inflight.get(key)
    const joined = shared !== undefined
    if (!shared) {
      shared = coordinate(job.store, key, work).finally(() => inflight.delete(key))
      inflight.set(key, shared)
    }
    const { result, waited } = await shared
    // Joined a call in this process, or waited on another instance's: coalesced either way.
    return { result, replayed: false, coalesced: joined || waited }
  }
}
