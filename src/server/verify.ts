import { ProxyError, recoveryRequired } from './errors.js'
import { fromBase64url } from './secrets.js'

export type FetchLike = (input: Request | string | URL, init?: RequestInit) => Promise<Response>

export interface VerifierOptions {
  /** PEM public key (Clerk dashboard → API keys → JWT public key): no network at all. */
  jwtKey?: string
  /** With `secretKey`: `{apiUrl}/v1/jwks`, fetched on demand and cached. */
  apiUrl?: string
  secretKey?: string
  /** Expected `iss`; not checked when undefined. */
  issuer?: string
  headers: Record<string, string>
  fetch: FetchLike
  now: () => number
  /** JWKS kept this long before it is fetched again. @default 3_600_000 */
  jwksTtlMs?: number
}

/** Checks an expired session token locally; throws ProxyError when it is not one of ours. */
export type TokenVerifier = (raw: string, requestOrigin: string) => Promise<void>

const ALGORITHM = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as const
/** An unknown `kid` fetches the JWKS again at most this often: random kids cannot flood Clerk. */
const JWKS_REFETCH_MIN_MS = 10_000
const CLOCK_SKEW_MS = 5_000
const MAX_LIFETIME_S = 86_400

/**
 * Verifies the RS256 signature, `iss`, `azp` and the timing claims of a session token, accepting
 * an expired `exp` (that is the point of a refresh), before any call that spends Clerk's quota.
 * A forged, unsigned or foreign token never reaches Clerk.
 */
export function createTokenVerifier(options: VerifierOptions): TokenVerifier {
  const staticKey = options.jwtKey ? importPem(options.jwtKey) : null
  const ttl = options.jwksTtlMs ?? 3_600_000
  let keys = new Map<string, Promise<CryptoKey>>()
  let fetchedAt = -Infinity
  let loading: Promise<void> | null = null

  async function loadJwks(): Promise<void> {
    const url = `${options.apiUrl!.replace(/\/+$/, '')}/v1/jwks`
    let response: Response
    try {
      response = await options.fetch(url, {
        headers: { ...options.headers, Authorization: `Bearer ${options.secretKey}` },
        redirect: 'manual',
        signal: AbortSignal.timeout(5_000),
      })
    } catch {
      throw new ProxyError(503, 'upstream_unavailable', 'Clerk could not be reached', { 'Retry-After': '5' })
    }
    if (response.status === 401 || response.status === 403) {
      throw new ProxyError(502, 'upstream_auth_failed', 'Clerk refused the secret key')
    }
    const body = (await response.json().catch(() => null)) as { keys?: unknown } | null
    if (!response.ok || !Array.isArray(body?.keys)) {
      throw new ProxyError(503, 'upstream_unavailable', 'Clerk did not serve its signing keys', { 'Retry-After': '5' })
    }
    const next = new Map<string, Promise<CryptoKey>>()
    for (const jwk of body.keys as Record<string, unknown>[]) {
      if (typeof jwk?.kid !== 'string' || jwk.kty !== 'RSA') continue
      const { kty, n, e } = jwk as { kty: string; n: string; e: string }
      const key = crypto.subtle.importKey('jwk', { kty, n, e, alg: 'RS256', ext: true }, ALGORITHM, false, ['verify'])
      key.catch(() => {})
      next.set(jwk.kid, key)
    }
    keys = next
    fetchedAt = options.now()
  }

  async function keyFor(kid: unknown): Promise<CryptoKey | null> {
    if (staticKey) return staticKey
    if (typeof kid !== 'string') return null
    const now = options.now()
    const stale = now - fetchedAt > ttl
    if (stale || (!keys.has(kid) && now - fetchedAt > JWKS_REFETCH_MIN_MS)) {
      loading ??= loadJwks().finally(() => {
        loading = null
      })
      await loading
    }
    return (await keys.get(kid)?.catch(() => null)) ?? null
  }

  return async (raw, requestOrigin) => {
    const [head, payload, signature] = raw.split('.') as [string, string, string]
    const header = parseSegment(head)
    const claims = parseSegment(payload)
    const invalid = (why: string) => recoveryRequired('token_invalid', `The session token ${why}`)
    if (!header || !claims) throw invalid('cannot be read')
    if (header.alg !== 'RS256') throw invalid('is not signed with RS256')
    const key = await keyFor(header.kid)
    if (!key) throw invalid('is signed by an unknown key')
    const data = new TextEncoder().encode(`${head}.${payload}`)
    let valid = false
    try {
      valid = await crypto.subtle.verify(ALGORITHM, key, fromBase64url(signature), data)
    } catch {
      valid = false
    }
    if (!valid) throw invalid('signature does not verify')
    if (options.issuer !== undefined && claims.iss !== options.issuer) throw invalid('was issued by another instance')
    const { iat, exp } = claims
    if (typeof iat !== 'number' || typeof exp !== 'number') throw invalid('has no iat or exp')
    if (iat * 1000 > options.now() + CLOCK_SKEW_MS) throw invalid('was issued in the future')
    if (exp <= iat || exp - iat > MAX_LIFETIME_S) throw invalid('has an impossible lifetime')
    if (claims.azp !== requestOrigin) {
      throw recoveryRequired('origin_azp_mismatch', 'The session token was issued to another origin')
    }
  }
}

function parseSegment(segment: string): Record<string, unknown> | null {
  try {
    const value = JSON.parse(new TextDecoder().decode(fromBase64url(segment)))
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : null
  } catch {
    return null
  }
}

function importPem(pem: string): Promise<CryptoKey> {
  const body = pem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, '').replace(/\s+/g, '')
  const der = Uint8Array.from(atob(body), (c) => c.charCodeAt(0))
  return crypto.subtle.importKey('spki', der, ALGORITHM, false, ['verify'])
}
