import { sleep, systemClock } from '../core/clock.js'
import type { ClerkClock } from './clerkClock.js'
import { isIneligible, ProxyError } from './errors.js'
import type { RefreshJob, RefreshOutcome } from './job.js'
import { STORE_KEYS } from './keys.js'
import type { RefreshStore } from './store.js'

export interface HoldDeps {
  clock: ClerkClock
  now: () => number
  /** Longest hold: a token that Clerk sees expire later than this is not held. 0: never. */
  holdMs: number
  /** Held requests in this process at most (joined ones count too). */
  maxHeld: number
}

export interface Hold {
  /** How long before expiry (on Clerk's clock) a request is held. */
  readonly windowMs: number
  /**
   * Whether `job` can be held (Clerk refusing unexpired tokens): its token expires on Clerk's
   * clock within the hold window, there is room, and Clerk's clock is known.
   */
  accepts(job: RefreshJob): boolean
  /** Holds `job` until Clerk sees its token expired, then runs `attempt`; joins a hold for the same token. */
  run(job: RefreshJob, attempt: () => Promise<RefreshOutcome>): Promise<RefreshOutcome>
}

/** An interval of the lead narrower than this is as good as known: released at its end. */
const CONVERGED_MS = 16
/**
 * Sends in one hold at most; all but the last may be refused. While the lead is not known, the
 * interval is walked in equal steps, one send a step: the send that finds the token expired is at
 * most a step late, and leaves an interval of one step.
 */
const MAX_SENDS = 4
/** Past the interval's end: the way to Clerk varies by a few ms from call to call. */
const RELEASE_MARGIN_MS = 4
/** The round trip of a held send (send to answer) is followed with this weight per send. */
const ROUND_TRIP_WEIGHT = 0.25

/** What an instance learned of Clerk's lead is shared with the fleet this often at most, and kept this long. */
const SHARE_EVERY_MS = 5_000
const SHARED_FOR_MS = 3_600_000

/** The browser went away while its request was held: nothing is sent for it. */
const gone = () => new ProxyError(499, 'invalid_request', 'The browser went away while its request was held')

interface Held {
  promise: Promise<RefreshOutcome>
  waiters: number
  controller: AbortController
}

/**
 * At expiry, without the wait. When Clerk refuses to refresh a token before it expires, a
 * request for a token that Clerk sees expire within `holdMs` is held here and sent when Clerk's
 * clock has passed `exp` (see `clerkClock.ts`), so the new token is minted the moment it can be
 * and reaches the browser one Clerk round trip after expiry, not a `Retry-After` later.
 *
 * While the lead is not known to `CONVERGED_MS`, the request is sent a quarter of the way into
 * what is known, and again a quarter further after each refusal (`MAX_SENDS`): Clerk's refresh
 * leaves a quarter of the interval, so a process learns the lead in three refreshes at expiry
 * (1 s, 250, 62, 16 ms), and none is more than a quarter of the interval late; a step whose
 * refusal would come back after the interval's end is not taken (the send at the end is then the
 * earlier one), so the walk stops where a round trip to Clerk outweighs it. Bounded: one
 * timer per held token (requests for the same token join it), `maxHeld` requests per process,
 * and a hold whose browsers all went away sends nothing.
 */
export function createHold(deps: HoldDeps): Hold {
  const { clock, now } = deps
  const holds = new Map<string, Held>()
  let heldRequests = 0
  let sharedAt = -Infinity
  // How long a held send takes to be answered (0 until one was): a refused probe costs that.
  let roundTrip = 0

  /** Another instance starting up holds its first request on this (`seed`), not on nothing. */
  function shareLead(store: RefreshStore): void {
    const lead = clock.lead()
    if (!lead || now() - sharedAt < SHARE_EVERY_MS) return
    sharedAt = now()
    store.set(STORE_KEYS.clerkLead, JSON.stringify([lead.low, lead.high]), SHARED_FOR_MS).catch(() => {})
  }

  const expiry = (job: RefreshJob) => job.token.expiresAt * 1000

  /**
   * When to send a held request for a token expiring at `exp`, after `refusals` in this hold. A
   * refusal raises the low end to where the last send was, so the next step is the same size. A
   * step is taken only if its refusal comes back before the interval ends. Where the end is nearer
   * than a round trip to Clerk, the interval is halved instead, once per hold and only before any
   * refusal: sent at the middle, the token comes a half earlier, or the refusal costs this hold
   * one round trip past the end, once. A width left as it is would cost every refresh from then on
   * twice: the release waits for its end, and the browser, told Clerk's clock by its low end,
   * takes tokens for expired that much early. Otherwise: just past the end.
   */
  function sendAt(exp: number, lead: { low: number; high: number }, refusals: number): number {
    const end = exp + lead.high
    const width = lead.high - lead.low
    const sendsLeft = MAX_SENDS - refusals
    if (width > CONVERGED_MS && sendsLeft > 1) {
      const step = Math.max(now(), Math.round(exp + lead.low + width / sendsLeft))
      if (step + roundTrip < end) return step
      const middle = Math.max(now(), Math.round(exp + lead.low + width / 2))
      if (refusals === 0 && middle < end) return middle
    }
    return end + RELEASE_MARGIN_MS
  }

  async function hold(job: RefreshJob, attempt: () => Promise<RefreshOutcome>, signal: AbortSignal): Promise<RefreshOutcome> {
    for (let refusals = 0; ; ) {
      const lead = clock.lead()
      if (!lead) throw new ProxyError(503, 'not_yet_expired', "Clerk's clock is not known", { 'Retry-After': '1' })
      await sleep(systemClock, Math.max(0, sendAt(expiry(job), lead, refusals) - now()), signal)
      // Clerk's refresh or refusal is observed by the call itself (`call.ts`), at its own send.
      const sentAt = now()
      const answered = () => {
        roundTrip += (now() - sentAt - roundTrip) * (roundTrip === 0 ? 1 : ROUND_TRIP_WEIGHT)
      }
      try {
        const outcome = await attempt()
        answered()
        shareLead(job.store)
        return outcome
      } catch (error) {
        if (!isIneligible(error)) throw error
        answered()
        if (++refusals >= MAX_SENDS) throw new ProxyError(503, 'not_yet_expired', 'Clerk still refuses this token', { 'Retry-After': '1' })
      }
    }
  }

  return {
    windowMs: deps.holdMs,
    accepts(job) {
      const lead = clock.lead()
      if (deps.holdMs <= 0 || !lead || heldRequests >= deps.maxHeld) return false
      return expiry(job) + lead.high - now() <= deps.holdMs
    },

    async run(job, attempt) {
      const key = `${job.sessionId}\n${job.token.raw}\n${job.credentials.join('\n')}`
      let held = holds.get(key)
      const joined = held !== undefined
      if (!held) {
        const controller = new AbortController()
        const promise = hold(job, attempt, controller.signal).finally(() => holds.delete(key))
        held = { promise, waiters: 0, controller }
        holds.set(key, held)
      }
      const entry = held
      entry.waiters++
      heldRequests++
      const signal = job.signal
      // A browser that leaves stops waiting; when the last one has left, nothing is sent.
      const left = new Promise<never>((_, reject) => {
        const leave = () => reject(gone())
        if (signal?.aborted) leave()
        signal?.addEventListener('abort', leave, { once: true })
      })
      try {
        const outcome = await Promise.race([entry.promise, left])
        return joined ? { ...outcome, coalesced: true } : outcome
      } finally {
        heldRequests--
        if (--entry.waiters === 0) entry.controller.abort(gone())
        entry.promise.catch(() => {})
      }
    },
  }
}
