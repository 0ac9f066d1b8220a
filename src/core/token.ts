import { jwtDecode } from 'jwt-decode'
import { TokenError } from '../errors/TokenError.js'

/** The claims of a Clerk session token that the agent relies on. Decoded, never verified. */
export interface SessionToken {
  /** The JWT itself. */
  readonly raw: string
  /** `sid` claim. */
  readonly sessionId: string
  /** `sub` claim, when present. */
  readonly userId: string | undefined
  /** `iat` claim, seconds since epoch on the issuer's clock. */
  readonly issuedAt: number
  /** `exp` claim, seconds since epoch on the issuer's clock. */
  readonly expiresAt: number
  /** `exp - iat` in milliseconds: the lifetime the issuer chose. */
  readonly lifetimeMs: number
}

/** Longer than any real session token; bounds the work a hostile string can cause. */
const MAX_TOKEN_LENGTH = 16_384
const SEGMENT = /^[A-Za-z0-9_-]+$/

/**
 * Decodes a session JWT without verifying its signature (the server verifies; the browser only
 * needs the timing claims). Every failure is a `TokenError` with its own message.
 */
export function decodeSessionToken(raw: unknown): SessionToken {
  if (typeof raw !== 'string' || raw.length === 0) throw new TokenError('Token is not a non-empty string')
  if (raw.length > MAX_TOKEN_LENGTH) throw new TokenError(`Token is longer than ${MAX_TOKEN_LENGTH} characters`)
  const segments = raw.split('.')
  if (segments.length !== 3) throw new TokenError(`Token has ${segments.length} segments, a JWT has 3`)
  if (!segments.every((s) => SEGMENT.test(s))) throw new TokenError('Token segments are not base64url')

  let claims: Record<string, unknown>
  try {
    claims = jwtDecode<Record<string, unknown>>(raw)
  } catch (cause) {
    throw new TokenError('Token payload is not base64url-encoded JSON', { cause })
  }
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) {
    throw new TokenError('Token payload is not a JSON object')
  }
  const { sid, sub, iat, exp } = claims
  if (!isTimestamp(exp)) throw new TokenError('Token has no numeric "exp" claim')
  if (!isTimestamp(iat)) throw new TokenError('Token has no numeric "iat" claim')
  if (exp <= iat) throw new TokenError('Token "exp" is not after its "iat"')
  if (typeof sid !== 'string' || sid.length === 0) throw new TokenError('Token has no string "sid" claim')
  return {
    raw,
    sessionId: sid,
    userId: typeof sub === 'string' ? sub : undefined,
    issuedAt: iat,
    expiresAt: exp,
    lifetimeMs: (exp - iat) * 1000,
  }
}

function isTimestamp(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0
}

/**
 * True when `next` should replace `current`: a newer token of the same session, or, for another
 * session, one issued no earlier (a session switch). Never an older token for the same session.
 */
export function isNewer(next: SessionToken, current: SessionToken | null): boolean {
  if (current === null) return true
  if (next.sessionId !== current.sessionId) return next.issuedAt >= current.issuedAt
  if (next.issuedAt !== current.issuedAt) return next.issuedAt > current.issuedAt
  return next.expiresAt > current.expiresAt
}
