import { isIneligible, ProxyError, recoveryRequired } from './errors.js'
import type { RefreshJob } from './job.js'
import type { Replay } from './replay.js'
import type { Upstream, UpstreamResult } from './upstream.js'

/**
 * The call to Clerk for one refresh. Each of the browser's refresh cookies is tried in turn while
 * Clerk does not know it (a cookie tossed onto the parent domain by a sibling subdomain may come
 * before the real one); a success is remembered for replay. A `…_consumed` answer (the token was refreshed
 * before, maybe by a request whose answer was lost) is answered from the store when it can be.
 */
export function createCall(
  upstream: Upstream,
  replay: Replay,
  now: () => number,
  /** What each call to Clerk tells of its clock, with the moment it was sent (`clerkClock.ts`). */
  observed: {
    /** Clerk minted `jwt` for `job` during a call sent at `sentAt`, answered at `receivedAt`. */
    minted(job: RefreshJob, sentAt: number, receivedAt: number, jwt: string): void
    /** Clerk refused `job`'s token as not expired yet, sent at `sentAt`. */
    refused(job: RefreshJob, sentAt: number): void
  },
): (job: RefreshJob) => Promise<UpstreamResult> {
  async function tryEach(job: RefreshJob): Promise<UpstreamResult> {
    // Not the browser request's signal: a client that goes away must not cancel a call others share.
    const signal = new AbortController().signal
    for (const [index, credential] of job.credentials.entries()) {
      try {
        const body = { ...job.body, refresh_token: credential }
        const sentAt = now()
        let result: UpstreamResult
        try {
          result = await upstream(job.sessionId, body, signal, { suffixedCookies: job.suffixedCookies })
        } catch (error) {
          if (isIneligible(error)) observed.refused(job, sentAt)
          throw error
        }
        observed.minted(job, sentAt, now(), result.jwt)
        await replay.remember(job, credential, result).catch(() => {})
        return result
      } catch (error) {
        const unknown = error instanceof ProxyError && error.reason === 'refresh_token_not_found'
        if (!unknown || index === job.credentials.length - 1) throw error
      }
    }
    throw new Error('unreachable: a job has at least one credential')
  }

  return async function call(job) {
    try {
      return await tryEach(job)
    } catch (error) {
      if (!(error instanceof ProxyError && error.reason === 'session_refresh_expired_session_token_consumed')) throw error
      const stored = await replay.find(job).catch(() => null)
      if (stored) return stored
      throw recoveryRequired('token_consumed', 'Clerk says this token was already refreshed, and the proxy kept no result for it')
    }
  }
}
