import { recoveryRequired } from './errors.js'
import { type KeySource, RS256 } from './jwks.js'
import { fromBase64url } from './secrets.js'

export interface VerifierOptions {
  /** Where the keys come from: `pemKey(jwtKey)` or `createJwksCache(…)`. */
  keys: KeySource
  /** Expected `iss`; not checked when undefined. */
  issuer?: string
  now: () => number
}

/** Checks an expired session token locally; throws ProxyError when it is not one of ours. */
export type TokenVerifier = (raw: string, requestOrigin: string) => Promise<void>

const CLOCK_SKEW_MS = 5_000
const MAX_LIFETIME_S = 86_400

/**
 * Verifies the RS256 signature, `iss`, `azp` and the timing claims of a session token, accepting
 * an expired `exp` (that is the point of a refresh), before any call that spends Clerk's quota.
 * A forged, unsigned or foreign token never reaches Clerk.
 */
export function createTokenVerifier(options: VerifierOptions): TokenVerifier {
  return async (raw, requestOrigin) => {
    const [head, payload, signature] = raw.split('.') as [string, string, string]
    const header = parseSegment(head)
    const claims = parseSegment(payload)
    const invalid = (why: string) => recoveryRequired('token_invalid', `The session token ${why}`)
    if (!header || !claims) throw invalid('cannot be read')
    if (header.alg !== 'RS256') throw invalid(`is signed with ${quote(header.alg)}, not RS256`)
    const key = await options.keys(header.kid)
    if (!key) throw invalid(`is signed by an unknown key (kid ${quote(header.kid)})`)
    const data = new TextEncoder().encode(`${head}.${payload}`)
    let valid = false
    try {
      valid = await crypto.subtle.verify(RS256, key, fromBase64url(signature), data)
    } catch {
      valid = false
    }
    if (!valid) throw invalid('signature does not verify')
    if (options.issuer !== undefined && claims.iss !== options.issuer) {
      throw invalid(`was issued by ${quote(claims.iss)}, not by this instance (${options.issuer})`)
    }
    const { iat, exp } = claims
    if (typeof iat !== 'number' || typeof exp !== 'number') throw invalid('has no iat or exp')
    if (iat * 1000 > options.now() + CLOCK_SKEW_MS) throw invalid('was issued in the future')
    if (exp <= iat || exp - iat > MAX_LIFETIME_S) throw invalid(`has an impossible lifetime (${exp - iat} s)`)
    if (claims.azp !== requestOrigin) {
      const message = `The session token was issued to ${quote(claims.azp)} (azp), not to the request's origin "${requestOrigin}"`
      throw recoveryRequired('origin_azp_mismatch', message)
    }
  }
}

/** A claim for a message: a string quoted (cut at 100 characters), anything else by its kind. */
function quote(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.slice(0, 100))
  return value === undefined ? 'none' : `a ${value === null ? 'null' : typeof value}`
}

function parseSegment(segment: string): Record<string, unknown> | null {
  try {
    const value = JSON.parse(new TextDecoder().decode(fromBase64url(segment)))
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : null
  } catch {
    return null
  }
}
