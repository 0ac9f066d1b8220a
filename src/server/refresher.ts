import { sleep, systemClock } from '../core/clock.js'
import { decodeSessionToken } from '../core/token.js'
import { createCall } from './call.js'
import { createClaims } from './claims.js'
import type { Calibration } from './calibrate.js'
import type { ClerkClock } from './clerkClock.js'
import { createEarlyRefresh, type EarlyRefresh } from './earlyRefresh.js'
import { ProxyError } from './errors.js'
import { createHold } from './hold.js'
import type { RefreshJob, RefreshOutcome } from './job.js'
import { createBudgetShare, createLimits, type RateLimits, type UpstreamBudget } from './limits.js'
import { createReplay } from './replay.js'
import type { StoreSecrets } from './secrets.js'
import type { Upstream } from './upstream.js'

/** A refusal is taken as "not expired yet" up to this far past the latest estimate of Clerk's expiry. */
const REFUSAL_SLACK_MS = 1_000
/**
 * A 503 `not_yet_expired` waits this long at most for a calibration in flight, and never past
 * `CALIBRATION_RESERVE_MS` and half the hold window before the token's expiry: the browser sends
 * its at-expiry refresh half the window early, so it has the answer, and Clerk's time with it,
 * in time to send that refresh into the hold (the reserve: the way back, and its timer).
 */
const CALIBRATION_WAIT_MS = 4_000
const CALIBRATION_RESERVE_MS = 300

export interface RefresherDeps {
  upstream: Upstream
  secrets: StoreSecrets
  now: () => number
  earlyRefresh: EarlyRefresh
  rateLimit: Required<RateLimits> | null
  budget: UpstreamBudget | null
  random: () => number
  /** A claim on a refresh lives this long: past it, another instance takes over. */
  claimTtlMs: number
  /** Where Clerk's clock stands (`clerkClock.ts`), learned from every call. */
  clock: ClerkClock
  /** Requests are held this long before expiry at most (`hold.ts`); 0: never. */
  holdMs: number
  maxHeldRequests: number
  /** Finds where Clerk's second turns once Clerk refuses early refreshes (`calibrate.ts`), or null. */
  calibration: Calibration | null
}

/**
 * Everything between a verified request and Clerk, in the order a request meets it. Clerk
 * refreshes each expired token once; this makes sure that once is never wasted.
 *
 * 1. replay (`replay.ts`): a retry of a refresh that already happened gets the same result;
 * 2. early refresh (`earlyRefresh.ts`): an unexpired token goes on only if Clerk is not known
 *    to refuse it, one probe at a time while that is being learned; when Clerk refuses, a token
 *    about to expire is held until Clerk sees it expired (`hold.ts`);
 * 3. claims (`claims.ts`): one call per refresh, in this process and across the fleet;
 * 4. limits (`limits.ts`): per session, per client and the app's budget, only for real calls;
 * 5. the call (`call.ts`): each refresh cookie in turn, the result kept for replay.
 */
export function createRefresher(deps: RefresherDeps): (job: RefreshJob) => Promise<RefreshOutcome> {
  const { now, secrets } = deps
  // Waiting on other instances (or on probes) ends after three claims' worth of time.
  const patienceMs = 3 * deps.claimTtlMs
  const replay = createReplay(secrets)
  const { clock } = deps
  const hold = deps.holdMs > 0 ? createHold({ clock, now, holdMs: deps.holdMs, maxHeld: deps.maxHeldRequests }) : null
  const early = createEarlyRefresh({ policy: deps.earlyRefresh, now, patienceMs, hold, clock })
  const once = createClaims({ secrets, now, random: deps.random, claimTtlMs: deps.claimTtlMs, patienceMs })
  const checkLimits = createLimits({ secrets, now, random: deps.random, rateLimit: deps.rateLimit, budget: deps.budget })
  // The calibration's calls to Clerk come out of the app's budget too, three quarters of a window at most.
  const budgetShare = createBudgetShare({ secrets, now, budget: deps.budget })
  const calibrate = (job: RefreshJob) => deps.calibration?.start(() => budgetShare(job.store))
  // Each call to Clerk tells where its clock stood, timed by the call's own send (not by a wait
  // on a claim or on another instance's result).
  const call = createCall(deps.upstream, replay, now, {
    minted(job, sentAt, receivedAt, jwt) {
      clock.observeStamp(sentAt, receivedAt, decodeSessionToken(jwt).issuedAt * 1000) // `iat`, whole seconds
      // Refreshed by a Clerk that refuses unexpired tokens: it saw this one expired.
      if (early.refusing()) clock.observe(-Infinity, sentAt - job.token.expiresAt * 1000)
    },
    refused(job, sentAt) {
      // "Not expired yet" is only believed where it can be true: Clerk also answers `…_ineligible`
      // for a token already superseded (clerk-refresh-facts.md), and a token sent long after its
      // expiry would otherwise teach that Clerk's clock is far behind, and the browser would be
      // told its tokens live that much longer.
      const late = sentAt - job.token.expiresAt * 1000
      if (late <= (clock.lead()?.high ?? 0) + REFUSAL_SLACK_MS) clock.observe(late, Infinity)
      calibrate(job)
    },
  })

  /**
   * The 503 that tells a browser Clerk refuses early refreshes also tells it Clerk's clock
   * (`Session-Keeper-Clerk-Time`). The first ones come as the calibration starts (with the first
   * refusal, one to two and a half seconds): they wait for it, so that the browser does not time
   * its token up to a second early, as long as the token lives long enough for that.
   */
  async function afterCalibration(job: RefreshJob, error: unknown): Promise<never> {
    const running = deps.calibration?.running
    const waitMs = Math.min(CALIBRATION_WAIT_MS, job.token.expiresAt * 1000 - now() - deps.holdMs / 2 - CALIBRATION_RESERVE_MS)
    if (running && waitMs > 0 && error instanceof ProxyError && error.code === 'not_yet_expired') {
      await Promise.race([running, sleep(systemClock, waitMs, job.signal).catch(() => {})])
    }
    throw error
  }

  return async function refresh(job) {
    if (early.refusing()) calibrate(job)
    const stored = await replay.find(job).catch(() => null)
    if (stored) return { result: stored, replayed: true, coalesced: false }
    return early
      .guard(job, () =>
        once(job, {
          lookup: () => replay.find(job),
          run: async () => {
            await checkLimits(job)
            return call(job)
          },
        }),
      )
      .catch((error: unknown) => afterCalibration(job, error))
  }
}
