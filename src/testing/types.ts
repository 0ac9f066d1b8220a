/** The emulator's options and what it reports. */

/** A Clerk instance is one or the other; its publishable key says which (`pk_live_` / `pk_test_`). */
export type InstanceType = 'production' | 'development'

export interface ClerkEmulatorOptions {
  /**
   * Production (`pk_live_…` key, `sk_live_emulator`) or development (`pk_test_…`,
   * `sk_test_emulator`; the Frontend API also plays Clerk's dev browser, `__clerk_db_jwt`).
   * Contradicting a given `publishableKey` is a TypeError.
   * @default the `publishableKey`'s type, else 'development'
   */
  instanceType?: InstanceType
  /** Lifetime of issued session tokens. @default 60 */
  tokenLifetimeSeconds?: number
  /**
   * The secret key callers must present as `Authorization: Bearer …`.
   * @default 'sk_live_emulator' for production, 'sk_test_emulator' for development
   */
  secretKey?: string
  /**
   * Publishable key: the cookie suffix and the tokens' `iss` come from it, as with Clerk.
   * @default 'pk_test_' (development) or 'pk_live_' (production) + base64('clerk.emulator.local$')
   */
  publishableKey?: string
  /** The emulator's clock, ms since epoch. @default Date.now */
  now?: () => number
  /**
   * What to do with a token that has not expired yet. Nobody outside Clerk knows what the real
   * service does: `'refuse'` answers `session_refresh_session_token_ineligible`, `'accept'`
   * refreshes it. Products must work under both.
   * @default 'refuse'
   */
  unexpiredTokens?: 'refuse' | 'accept'
  /** Tokens that expired longer ago get `session_refresh_expired_session_token_too_old`. @default 86_400 */
  expiredTokenMaxAgeSeconds?: number
  /** Mark the cookies of `createSession` and of the Frontend API `Secure`. @default true */
  secureCookies?: boolean
  /**
   * Origins other than the Frontend API's own that its `redirect_url` may point to (the app's,
   * when the Frontend API is mounted elsewhere). Any other target is a 422.
   * @default [] (only the origin the Frontend API is reached on)
   * @example ['http://127.0.0.1:5173']
   */
  redirectOrigins?: string[]
}

export interface EmulatorFaults {
  /** Delay before every answer. */
  latencyMs?: number
  /** Fail the next N refresh calls with `failStatus`. */
  failNext?: number
  /** @default 503 */
  failStatus?: number
  /** Clerk's error code of the injected failures. @default `too_many_requests` for 429, else `internal_clerk_error` */
  failCode?: string
  /** Sent as `Retry-After` with injected failures. */
  retryAfterSeconds?: number
  /** Drop the connection of the next N refresh calls (no answer at all). */
  dropNext?: number
  /** Refresh the next N calls, then drop the connection: the answer is lost after the work is done. */
  dropAfterRefreshNext?: number
}

export interface EmulatedSession {
  sessionId: string
  userId: string
  sessionToken: string
  refreshToken: string
  /** Set-Cookie directives as Clerk's handshake plants them on the app's domain. */
  cookies: string[]
}

export interface EmulatorStats {
  /** Successful refreshes. */
  refreshes: number
  /** Refresh calls answered 4xx (validation, auth, revoked, mismatched). */
  rejected: number
  /** Refresh calls failed or dropped by fault injection. */
  faulted: number
  /** Successful refreshes per session. */
  bySession: Record<string, number>
  /** Refusals per Clerk error code. */
  byCode: Record<string, number>
  /** Handshakes served by the Frontend API (each one a redirect of a page load through it). */
  handshakes: number
  /** Handshakes per reason the middleware gave (`__clerk_hs_reason`). */
  byHandshakeReason: Record<string, number>
}

/** What the emulator saw of one request, for tests that assert how Clerk is called. */
export interface RecordedRequest {
  method: string
  path: string
  query: Record<string, string>
  apiVersion: string | null
  userAgent: string | null
  body: unknown
  status: number
  code: string | null
}
