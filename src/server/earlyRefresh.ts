import { HOLD_HEADER } from '../core/transport.js'
import type { ClerkClock } from './clerkClock.js'
import { isIneligible, ProxyError } from './errors.js'
import type { Hold } from './hold.js'
import { isUnexpired, type RefreshJob, type RefreshOutcome } from './job.js'
import { STORE_KEYS } from './keys.js'
import type { RefreshStore } from './store.js'

/**
 * Whether tokens that have not expired are sent to Clerk. `'auto'`: learn it from Clerk;
 * `'never'`: answer 503 `not_yet_expired` without asking; `'always'`: always ask.
 */
export type EarlyRefresh = 'auto' | 'always' | 'never'

export interface EarlyRefreshDeps {
  policy: EarlyRefresh
  now: () => number
  /** Longest a request waits on probes before it gives up with a 503. */
  patienceMs: number
  /** Holds requests at expiry while Clerk refuses unexpired tokens (`hold.ts`), or null. */
  hold: Hold | null
  /** Learns from Clerk's refusals and refreshes where its clock stands. */
  clock: ClerkClock
}
/** How long "Clerk refuses early refreshes" is believed (in the store) before one request asks again. */
const LEARNED_MS = 3_600_000
/** The store is asked what the fleet learned at most this often per process. */
const STORE_CHECK_MS = 10_000
const MAX_RETRY_AFTER_S = 3_600

type Belief = 'unknown' | 'accepts' | 'refuses'

/** Another instance's interval of Clerk's lead, as stored by `shareLead` (`hold.ts`), if well-formed. */
function seedFrom(clock: ClerkClock, stored: string | null): void {
  try {
    const value: unknown = stored === null ? null : JSON.parse(stored)
    if (Array.isArray(value) && value.length === 2 && value.every((n) => typeof n === 'number' && Number.isFinite(n)))
      clock.seed(value[0], value[1])
  } catch {
    // not ours, or garbled: nothing learned
  }
}

/**
 * 503 `not_yet_expired`, `Retry-After` = seconds until the token expires (bounded); with
 * `holdMs`, also how long before expiry a request would be held instead.
 */
export function notYetExpired(job: RefreshJob, now: number, holdMs = 0): ProxyError {
  const msLeft = job.token.expiresAt * 1000 - now
  const seconds = Math.max(1, Math.min(Math.ceil(msLeft / 1000), Math.ceil(job.token.lifetimeMs / 1000), MAX_RETRY_AFTER_S))
  return new ProxyError(503, 'not_yet_expired', `Clerk refreshes this token only once it has expired, in ${seconds} s`, {
    'Retry-After': String(seconds),
    ...(holdMs > 0 ? { [HOLD_HEADER]: String(holdMs) } : {}),
  })
}

/**
 * A failure that says nothing about the probe's own session but that Clerk (or the app's share of
 * it) is failing for everyone: 5xx, and 429 other than this session's or client's own limit.
 */
function failsForEveryone(error: unknown): error is ProxyError {
  if (!(error instanceof ProxyError) || error.code === 'not_yet_expired') return false
  return error.status >= 500 || (error.status === 429 && error.reason !== 'proxy_limit')
}

/**
 * The early-refresh policy. Nobody outside Clerk knows whether it refreshes a token that has not
 * expired; with `'auto'` the proxy learns it from Clerk's answers: a refusal (`…_ineligible`)
 * makes it answer 503 `not_yet_expired` itself for an hour (written to the store, so the whole
 * fleet knows, and re-read every 10 s); an accepted one lets unexpired tokens through.
 *
 * While nothing is known, ONE request per process asks (the probe); the other unexpired tokens
 * wait for its answer, then get 503 without calling Clerk, or go ahead if Clerk accepted. A probe
 * that teaches nothing (its own cookie was unknown, its session over) hands over to the next
 * waiting request; one that finds Clerk failing gives the waiting requests the same answer.
 * Expired tokens never wait: they are not what the probe asks about.
 */
export function createEarlyRefresh(deps: EarlyRefreshDeps) {
  const { policy, now } = deps
  let belief: Belief = 'unknown'
  let checkedAt = -Infinity
  /** The probe in flight: resolves, once it is answered, with a failure to share (or null). */
  let probe: Promise<ProxyError | null> | null = null

  /** What the fleet learned, from the store at most every `STORE_CHECK_MS`. */
  async function refuses(store: RefreshStore): Promise<boolean> {
    if (now() - checkedAt > STORE_CHECK_MS) {
      try {
        const [early, lead] = await Promise.all([store.get(STORE_KEYS.early), store.get(STORE_KEYS.clerkLead)])
        const refused = early === 'refused'
        checkedAt = now()
        seedFrom(deps.clock, lead)
        if (refused) belief = 'refuses'
        else if (belief === 'refuses') belief = 'unknown' // forgotten: one request asks again
      } catch {
        // the store failed: what this process believes stands
      }
    }
    return belief === 'refuses'
  }

  async function learn(store: RefreshStore, next: 'accepts' | 'refuses'): Promise<void> {
    if (policy !== 'auto') return
    const before = belief
    belief = next
    checkedAt = now()
    if (next === 'refuses' && before !== 'refuses') await store.set(STORE_KEYS.early, 'refused', LEARNED_MS).catch(() => {})
    if (next === 'accepts' && before === 'refuses') await store.delete(STORE_KEYS.early).catch(() => {})
  }

  /** Refusing early refreshes: hold the request until Clerk sees its token expired, or say when. */
  function atExpiry(job: RefreshJob, attempt: () => Promise<RefreshOutcome>): Promise<RefreshOutcome> {
    if (deps.hold?.accepts(job)) return deps.hold.run(job, attempt)
    if (!isUnexpired(job, now())) return attempt()
    throw notYetExpired(job, now(), deps.hold?.windowMs)
  }

  /** Sends an unexpired token on; Clerk's answer is learned, and its refusal becomes a 503 (or a hold). */
  async function ask(job: RefreshJob, attempt: () => Promise<RefreshOutcome>): Promise<RefreshOutcome> {
    try {
      const outcome = await attempt()
      await learn(job.store, 'accepts')
      return outcome
    } catch (error) {
      if (!isIneligible(error)) throw error
      if (policy === 'always') throw notYetExpired(job, now())
      await learn(job.store, 'refuses')
      return atExpiry(job, attempt)
    }
  }

  function askAsProbe(job: RefreshJob, attempt: () => Promise<RefreshOutcome>): Promise<RefreshOutcome> {
    let answered!: (failure: ProxyError | null) => void
    probe = new Promise((resolve) => {
      answered = resolve
    })
    const done = (failure: ProxyError | null) => {
      probe = null
      answered(failure)
    }
    return ask(job, attempt).then(
      (outcome) => {
        done(null)
        return outcome
      },
      (error: unknown) => {
        done(failsForEveryone(error) ? error : null)
        throw error
      },
    )
  }

  /** Runs `attempt` for `job`, or answers 503 `not_yet_expired` without it. */
  async function guard(job: RefreshJob, attempt: () => Promise<RefreshOutcome>): Promise<RefreshOutcome> {
    if (policy === 'never' || (policy === 'auto' && belief === 'refuses' && (await refuses(job.store)))) return atExpiry(job, attempt)
    if (!isUnexpired(job, now())) return attempt()
    if (policy === 'always') return ask(job, attempt)
    const giveUpAt = now() + deps.patienceMs
    for (;;) {
      if (await refuses(job.store)) return atExpiry(job, attempt)
      if (belief === 'accepts') return ask(job, attempt)
      // No await between this check and `askAsProbe` setting `probe`: exactly one probe.
      if (!probe) return askAsProbe(job, attempt)
      const failure = await probe
      if (failure) throw new ProxyError(failure.status, failure.code, failure.message, failure.headers, failure.reason)
      if (now() >= giveUpAt) {
        throw new ProxyError(503, 'upstream_unavailable', 'The refresh did not complete in time', { 'Retry-After': '2' })
      }
    }
  }

  return {
    guard,
    /** Clerk is taken to refuse unexpired tokens (learned, or `'never'`): a refresh then says it saw the token expired. */
    refusing: () => policy === 'never' || belief === 'refuses',
  }
}
