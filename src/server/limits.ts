import { ProxyError } from './errors.js'
import type { RefreshJob } from './job.js'
import { STORE_KEYS } from './keys.js'
import type { StoreSecrets } from './secrets.js'
import type { RefreshStore } from './store.js'

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

export interface LimitsDeps {
  secrets: StoreSecrets
  now: () => number
  random: () => number
  rateLimit: Required<RateLimits> | null
  budget: UpstreamBudget | null
}

/** One window's counter of `subject` (hashed: no session id or IP in the store's keys). */
const windowKey = async (secrets: StoreSecrets, prefix: string, subject: string, window: number) =>
  `${prefix}${await secrets.hash(subject)}:${window}`

/** The app's one budget counter: the refreshes and the calibration count in the same one. */
const BUDGET_COUNTER = { key: STORE_KEYS.budget, subject: 'budget' } as const

/** The calibration's calls are sent while a window's count is below this share of the budget. */
const CALIBRATION_SHARE = 0.75

/** Clients refused in the same window come back spread over this many more seconds. */
const CLIENT_SPREAD_S = 5

/** One fixed-window counter: `max` calls per `windowMs` for `subject`. */
interface Limit {
  key: string
  subject: string
  max: number
  windowMs: number
  /** `Retry-After` is spread over this many seconds past the window's end. */
  spreadS: number
  /** For the message: what this limit is. */
  name: string
  reason: 'proxy_limit' | 'upstream_budget'
}

/**
 * Rate limits on calls to Clerk, in fixed windows counted in the store (so shared by a fleet):
 * per session and per client IP (`reason: 'proxy_limit'`), and the whole app's budget of Clerk's
 * instance-wide quota (`reason: 'upstream_budget'`). Past one, 429 with a spread `Retry-After`.
 */
export function createLimits(deps: LimitsDeps): (job: RefreshJob) => Promise<void> {
  const { secrets, now } = deps

  async function count(job: RefreshJob, limit: Limit): Promise<void> {
    const window = Math.floor(now() / limit.windowMs)
    const key = await windowKey(secrets, limit.key, limit.subject, window)
    if ((await job.store.increment(key, limit.windowMs)) <= limit.max) return
    const left = (window + 1) * limit.windowMs - now()
    // Spread: clients refused together must not all come back in the same second.
    const seconds = Math.ceil(left / 1000) + Math.floor(deps.random() * limit.spreadS)
    const message = `Too many refreshes: ${limit.name} is ${limit.max} calls to Clerk per ${limit.windowMs / 1000} s; retry in ${seconds} s`
    throw new ProxyError(429, 'rate_limited', message, { 'Retry-After': String(seconds) }, limit.reason)
  }

  return async function checkLimits(job) {
    const { rateLimit, budget } = deps
    if (rateLimit) {
      const { perSession, perClient, windowMs } = rateLimit
      const common = { key: STORE_KEYS.limit, windowMs, spreadS: CLIENT_SPREAD_S, reason: 'proxy_limit' } as const
      await count(job, { ...common, subject: `s:${job.sessionId}`, max: perSession, name: 'the limit per session' })
      if (job.clientIp) await count(job, { ...common, subject: `c:${job.clientIp}`, max: perClient, name: 'the limit per client' })
    }
    // The whole app's share of Clerk's instance-wide quota, across every proxy instance.
    if (budget) {
      const spreadS = Math.ceil(budget.windowMs / 1000)
      await count(job, {
        ...BUDGET_COUNTER,
        ...budget,
        spreadS,
        name: "the app's upstream budget",
        reason: 'upstream_budget',
      })
    }
  }
}

/**
 * The clock calibration's share of the app's budget (`calibrate.ts`): one of its calls to Clerk
 * is sent only while this window's count stands below three quarters of the budget, and then
 * counted like a refresh; refreshes keep the last quarter. Thirty calls per instance, a fleet
 * starting at once would otherwise spend Clerk's quota on the clock; a single instance on a
 * development key (a budget of 50) still calibrates in full. Without a budget, every call is allowed.
 */
export function createBudgetShare(deps: Pick<LimitsDeps, 'secrets' | 'now' | 'budget'>): (store: RefreshStore) => Promise<boolean> {
  const { secrets, now, budget } = deps
  return async (store) => {
    if (!budget) return true
    const window = Math.floor(now() / budget.windowMs)
    const key = await windowKey(secrets, BUDGET_COUNTER.key, BUDGET_COUNTER.subject, window)
    if (Number((await store.get(key)) ?? 0) >= budget.max * CALIBRATION_SHARE) return false
    await store.increment(key, budget.windowMs)
    return true
  }
}
