import { sleep, systemClock } from '../core/clock.js'
import type { ClerkClock } from './clerkClock.js'
import { type JwksAccess, requestJwks } from './jwks.js'

/** One cheap call to Clerk: sent and answered (local ms) and its `Date` header (ms), or null without one. */
export type ClerkPing = () => Promise<{ sentAt: number; receivedAt: number; dateMs: number } | null>

/**
 * Calls per round; each narrows the low end of the lead to the window it searched over its calls.
 * The first round is the denser: it is all a short token's first 503 may have time to wait for.
 */
const PINGS = [20, 10]
/** A round searches twice the step the last one left: the way to Clerk varies from call to call. */
const SLACK = 2
/** A calibration that failed (Clerk unreachable, no `Date`) is tried again after this at the earliest. */
const RETRY_MS = 60_000
/** Time to schedule the first call of a round. */
const LEAD_IN_MS = 20

/** Whether one more call to Clerk may go out now (the app's upstream budget). */
type Allow = () => Promise<boolean>

export interface Calibration {
  /**
   * Starts the calibration, unless it ran already, runs, or failed within `RETRY_MS`. `allow` is
   * asked before each call (the app's upstream budget): a call it refuses is not sent, and a round
   * with no answer ends the calibration as failed.
   */
  start(allow?: Allow): void
  /** The calibration in flight, if any (tests and shutdown await it). */
  readonly running: Promise<void> | null
}

/**
 * Where in its second Clerk's clock stands. `Date` and `iat` tell Clerk's time in whole seconds,
 * so what a call teaches of the lead (`clerkClock.ts`) is an interval of a second and more, and a
 * browser, told that Clerk's clock reads at most `t − low`, takes its tokens to expire up to a
 * second early and waits that long at expiry. Until refusals near expiry narrow it (a few
 * refreshes), the low end can be found another way: a call that reaches Clerk just before its
 * second turns proves the low end to within how close it came.
 *
 * So, once per process, when Clerk is known to refuse early refreshes (where the wait at expiry
 * exists): twenty cheap calls (`GET /v1/jwks`) spread over the second in which Clerk's second
 * may turn (the next second), which leave the low end known to 50 ms after about a second, then
 * ten over twice that step where it did (at the next turn): thirty calls in one to two and a half
 * seconds leave it known to about 10 ms (plus the calls' jitter). Every call is observed like
 * any other of Clerk's answers: one that contradicts the others starts the interval over.
 */
export function createCalibration(clock: ClerkClock, ping: ClerkPing, now: () => number): Calibration {
  let running: Promise<void> | null = null
  let done = false
  let failedAt = -Infinity

  /** One ping if `allow` lets it go, observed like any other of Clerk's answers; false when not sent, failed or without `Date`. */
  async function send(allow: Allow): Promise<boolean> {
    if (!(await allow().catch(() => false))) return false
    const answer = await ping().catch(() => null)
    if (answer) clock.observeStamp(answer.sentAt, answer.receivedAt, answer.dateMs)
    return answer !== null
  }

  async function round(window: number, pings: number, allow: Allow): Promise<boolean> {
    const lead = clock.lead()
    if (!lead) return false
    // Clerk's clock turns a second at local `K·1000 + τ`, and τ ∈ (low, low + window]: calls at
    // steps across the next such span far enough ahead (any second holds a turn: the first round
    // starts at once).
    const start = window >= 1_000 ? now() + LEAD_IN_MS : Math.ceil((now() + LEAD_IN_MS - lead.low) / 1_000) * 1_000 + lead.low
    const step = window / pings
    const answers = await Promise.all(
      Array.from({ length: pings }, async (_, i) => {
        await sleep(systemClock, Math.max(0, start + (i + 1) * step - now()))
        return send(allow)
      }),
    )
    return answers.some(Boolean)
  }

  async function calibrate(allow: Allow): Promise<void> {
    if (!clock.lead()) await send(allow)
    let window = 1_000
    for (const pings of PINGS) {
      if (!(await round(window, pings, allow))) {
        failedAt = now()
        return
      }
      window = Math.min(1_000, (SLACK * window) / pings)
    }
    done = true
  }

  return {
    start(allow = async () => true) {
      if (done || running || now() - failedAt < RETRY_MS) return
      running = calibrate(allow).finally(() => {
        running = null
      })
    },
    get running() {
      return running
    },
  }
}

/** Clerk's `GET /v1/jwks` (`jwks.ts`) as a ping: a read with Clerk's `Date`, the body left unread. */
export function jwksPing(clerk: JwksAccess, now: () => number): ClerkPing {
  return async () => {
    const sentAt = now()
    const response = await requestJwks(clerk)
    const receivedAt = now()
    await response.body?.cancel().catch(() => {})
    const dateMs = Date.parse(response.headers.get('date') ?? '')
    return Number.isFinite(dateMs) ? { sentAt, receivedAt, dateMs } : null
  }
}
