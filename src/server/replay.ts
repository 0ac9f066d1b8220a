import type { RefreshJob } from './job.js'
import { STORE_KEYS } from './keys.js'
import type { StoreSecrets } from './secrets.js'
import type { UpstreamResult } from './upstream.js'

export interface Replay {
  /** The result an earlier refresh of this token got with one of this request's cookies, or null. */
  find(job: RefreshJob): Promise<UpstreamResult | null>
  /** Keeps `result` for requests with the same session, token and refresh cookie. */
  remember(job: RefreshJob, credential: string, result: UpstreamResult): Promise<void>
}

/**
 * Idempotent replay: Clerk refreshes each expired token once, so a retry after a lost answer must
 * get the same result from the store. Entries are keyed by a keyed hash of session, token and
 * refresh cookie (a result is only ever handed to the same credential) and sealed with AES-GCM,
 * bound to their key, for twice the token's lifetime (at least a minute).
 */
export function createReplay(secrets: StoreSecrets): Replay {
  const keyOf = async (job: RefreshJob, credential: string) =>
    STORE_KEYS.replay + (await secrets.hash(job.sessionId, job.token.raw, credential))

  return {
    async find(job) {
      for (const credential of job.credentials) {
        const key = await keyOf(job, credential)
        const sealed = await job.store.get(key)
        const plain = sealed === null ? null : await secrets.open(sealed, key)
        if (plain !== null) return JSON.parse(plain) as UpstreamResult
      }
      return null
    },
    async remember(job, credential, result) {
      const key = await keyOf(job, credential)
      const ttlMs = Math.max(60_000, 2 * job.token.lifetimeMs)
      await job.store.set(key, await secrets.seal(JSON.stringify(result), key), ttlMs)
    },
  }
}
