import type { SessionToken } from '../core/token.js'
import type { RefreshStore } from './store.js'
import type { RefreshSessionRequestBody, UpstreamResult } from './upstream.js'

/** One verified browser request, as everything between the handler and Clerk sees it. */
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
  /** Aborts when the browser goes away: a held request is then never sent. */
  signal?: AbortSignal
}

export interface RefreshOutcome {
  result: UpstreamResult
  /** Answered from the store: the same token an earlier request got. */
  replayed: boolean
  /** Shared another request's upstream call (in this process, or another instance's). */
  coalesced: boolean
}

/** The job's token has not expired yet (on this machine's clock). */
export function isUnexpired(job: RefreshJob, now: number): boolean {
  return job.token.expiresAt * 1000 > now
}
