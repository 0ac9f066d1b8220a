import { systemClock } from '../core/clock.js'
import { type FetchLike, MAX_HOLD_MS } from '../core/transport.js'
import { cookieSuffix, frontendApiOf, type SessionCookieOptions } from './cookies.js'
import type { RateLimits, UpstreamBudget } from './limits.js'
import type { RefreshHandlerOptions } from './options.js'
import type { ProxyTrust } from './origin.js'

/**
 * The one table of the handler's defaults (the README's "Proxy options" table quotes them; a test
 * checks that it does). `toNodeHandler` takes its `maxBodyBytes` from here too.
 */
export const DEFAULTS = {
  apiUrl: 'https://api.clerk.com',
  allowedOrigins: [] as string[],
  cookies: { name: '__session' },
  format: 'token',
  trustProxy: false,
  trustedHops: 1,
  timeoutMs: 5_000,
  maxBodyBytes: 8_192,
  bodyTimeoutMs: 5_000,
  fetch: ((input, init) => fetch(input, init)) as FetchLike,
  clock: systemClock,
  storeTimeoutMs: 250,
  /**
   * A safe share of Clerk's Backend API quota, which is per instance and shared with the app's
   * other Backend API calls: half of 1,000 per 10 s in production (`pk_live_`), half of 100 in
   * development.
   */
  upstreamBudget: { live: { max: 500, windowMs: 10_000 }, other: { max: 50, windowMs: 10_000 } },
  earlyRefresh: 'auto',
  holdMs: MAX_HOLD_MS,
  maxHeldRequests: 1_000,
  rateLimit: { perSession: 20, perClient: 120, windowMs: 60_000 },
  random: () => Math.random(),
} as const satisfies { [K in keyof RefreshHandlerOptions]?: unknown }

type Defaulted =
  | 'apiUrl'
  | 'format'
  | 'timeoutMs'
  | 'maxBodyBytes'
  | 'bodyTimeoutMs'
  | 'fetch'
  | 'clock'
  | 'storeTimeoutMs'
  | 'earlyRefresh'
  | 'holdMs'
  | 'maxHeldRequests'
  | 'random'

/** The options with every default applied: what `createRefreshHandler` assembles from. */
export interface ResolvedOptions
  extends Omit<RefreshHandlerOptions, Defaulted | 'cookies' | 'rateLimit' | 'upstreamBudget' | 'refreshCookieName'>,
    Required<Pick<RefreshHandlerOptions, Defaulted>> {
  /** `origin` then `allowedOrigins`: when not empty, the only origins allowed to refresh. */
  configuredOrigins: string[]
  /** `__refresh_<suffix>`, or `refreshCookieName`. */
  refreshCookieName: Promise<string>
  /** Clerk's cookie suffix of the publishable key, or null without one. */
  cookieSuffix: Promise<string | null>
  /** The session cookies set on success; null: none. `alsoSuffixed`: `__session_<suffix>` too. */
  cookies: { name: string; alsoSuffixed: boolean; attributes: SessionCookieOptions } | null
  /** The session cookie the token may come from when the body has none (even with `cookies: false`). */
  sessionCookieName: string
  trust: ProxyTrust
  storeSecret: string
  upstreamBudget: UpstreamBudget | null
  verifyTokens: boolean
  rateLimit: Required<RateLimits> | null
}

/** Checks the options (a clear TypeError at start-up) and applies every default, from `DEFAULTS`. */
export function resolveOptions(options: RefreshHandlerOptions): ResolvedOptions {
  checkOptions(options)
  // An option given as `undefined` is left out: it takes its default.
  const given: RefreshHandlerOptions = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined))
  const { publishableKey, secretKey, cookies, origin, upstreamBudget, rateLimit } = given
  const suffix = publishableKey ? cookieSuffix(publishableKey) : Promise.resolve(null)
  const frontendApi = publishableKey ? frontendApiOf(publishableKey) : null
  const attributes = cookies || {}
  const cookieName = attributes.name ?? DEFAULTS.cookies.name
  const { live, other } = DEFAULTS.upstreamBudget
  return {
    ...DEFAULTS,
    ...given,
    configuredOrigins: [...(origin ? [origin] : []), ...(given.allowedOrigins ?? DEFAULTS.allowedOrigins)],
    refreshCookieName: suffix.then((s) => given.refreshCookieName || `__refresh_${s}`),
    cookieSuffix: suffix,
    cookies: cookies === false ? null : { name: cookieName, alsoSuffixed: attributes.name === undefined, attributes },
    sessionCookieName: cookieName,
    trust: { trustProxy: given.trustProxy ?? DEFAULTS.trustProxy, trustedHops: given.trustedHops ?? DEFAULTS.trustedHops },
    storeSecret: given.storeSecret ?? secretKey ?? crypto.getRandomValues(new Uint32Array(8)).join('.'),
    upstreamBudget: upstreamBudget === false ? null : (upstreamBudget ?? (publishableKey?.startsWith('pk_live_') ? live : other)),
    verifyTokens: given.verifyTokens ?? Boolean(secretKey || given.jwtKey),
    issuer: given.issuer ?? (frontendApi ? `https://${frontendApi}` : undefined),
    rateLimit: rateLimit === false ? null : { ...DEFAULTS.rateLimit, ...rateLimit },
  }
}

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/

/** A value for a start-up message; a secret key passed where it does not belong is never printed. */
function shown(value: unknown): string {
  if (typeof value !== 'string') return String(value)
  return value.startsWith('sk_') ? 'a secret key (sk_…)' : JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value)
}

/** Start-up checks: a misconfiguration is a clear TypeError now, not a sign-out later. */
export function checkOptions(options: RefreshHandlerOptions): void {
  const fail = (message: string) => {
    throw new TypeError(`createRefreshHandler: ${message}`)
  }
  if (!options.upstream && !options.secretKey) fail('`secretKey` is required (or pass `upstream`)')
  if (!options.publishableKey && !options.refreshCookieName && !options.upstream) {
    fail('`publishableKey` is required: the refresh cookie is `__refresh_<suffix>`, derived from it (or pass `refreshCookieName`)')
  }
  if (options.publishableKey !== undefined && frontendApiOf(options.publishableKey) === null) {
    fail(`\`publishableKey\` is not a Clerk publishable key (pk_test_… or pk_live_…): got ${shown(options.publishableKey)}`)
  }
  if (options.apiUrl !== undefined) {
    let url: URL | undefined
    try {
      url = new URL(options.apiUrl)
    } catch {
      fail(`\`apiUrl\` is not a URL: got ${shown(options.apiUrl)}`)
    }
    if (url!.protocol !== 'https:' && !(url!.protocol === 'http:' && LOOPBACK.test(url!.hostname))) {
      fail(
        `\`apiUrl\` must be https (plain http only on loopback): the secret key and refresh tokens travel over it; got ${url!.protocol}//${url!.host}`,
      )
    }
  }
  for (const origin of [options.origin, ...(options.allowedOrigins ?? [])]) {
    if (origin === undefined) continue
    let parsed: URL | undefined
    try {
      parsed = new URL(origin)
    } catch {
      // reported below
    }
    if (parsed?.origin !== origin) fail(`${shown(origin)} is not an origin (scheme://host[:port], no path)`)
  }
  if (options.trustedHops !== undefined && !(Number.isInteger(options.trustedHops) && options.trustedHops >= 1)) {
    fail(`\`trustedHops\` must be a whole number ≥ 1: got ${shown(options.trustedHops)}`)
  }
  const { holdMs, maxHeldRequests } = options
  if (holdMs !== undefined && !(Number.isFinite(holdMs) && holdMs >= 0 && holdMs <= MAX_HOLD_MS)) {
    fail(`\`holdMs\` must be between 0 and ${MAX_HOLD_MS} (ms): got ${shown(holdMs)}`)
  }
  if (maxHeldRequests !== undefined && !(Number.isInteger(maxHeldRequests) && maxHeldRequests >= 0)) {
    fail(`\`maxHeldRequests\` must be a whole number ≥ 0: got ${shown(maxHeldRequests)}`)
  }
}
