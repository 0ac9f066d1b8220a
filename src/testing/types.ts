/** The emulator's options and what it reports. */

export interface ClerkEmulatorOptions {
  /** Lifetime of issued session tokens. @default 60 */
  tokenLifetimeSeconds?: number
  /** The secret key callers must present as `Authorization: Bearer …`. @default 'sk_test_emulator' */
  secretKey?: string
  /**
   * Publishable key: the cookie suffix and the tokens' `iss` come from it, as with Clerk.
   * @default 'pk_test_' + base64('clerk.emulator.local$')
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
  /** Mark the cookies of `createSession` `Secure`. @default true */
  secureCookies?: boolean
}

export interface EmulatorFaults {
  /** Delay before every answer. */
  latencyMs?: number
  /** Fail the next N refresh calls with `failStatus`. */
  failNext?: number
  /** @default 503 */
  failStatus?: number
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
