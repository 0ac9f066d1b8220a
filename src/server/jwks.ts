import type { FetchLike } from '../core/transport.js'
import { ProxyError } from './errors.js'
import { describeFetchFailure, displayUrl } from './upstream.js'

/** The only algorithm of Clerk's session tokens. */
export const RS256 = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as const

/** The verification key for a token's `kid`, or null when there is none. */
export type KeySource = (kid: unknown) => Promise<CryptoKey | null>

export interface JwksOptions {
  /** Clerk's Backend API; the keys are at `{apiUrl}/v1/jwks`. */
  apiUrl: string
  secretKey: string | undefined
  /** Headers of every call to Clerk: `Clerk-API-Version`, `User-Agent`. */
  headers: Record<string, string>
  fetch: FetchLike
  now: () => number
  /** Longest the key fetch may take (the handler's `timeoutMs`); past it, 504 `upstream_timeout`. */
  timeoutMs: number
  /** The keys are kept this long before they are fetched again. @default 3_600_000 */
  ttlMs?: number
}

/** How Clerk's `GET /v1/jwks` is called: the key cache's and the clock calibration's (`calibrate.ts`). */
export type JwksAccess = Pick<JwksOptions, 'apiUrl' | 'secretKey' | 'headers' | 'fetch' | 'timeoutMs'>

/** The URL of Clerk's signing keys. */
export const jwksUrl = (apiUrl: string) => `${apiUrl.replace(/\/+$/, '')}/v1/jwks`

/** `GET {apiUrl}/v1/jwks` with the secret key, bounded by `timeoutMs`; rejects as `fetch` does. */
export function requestJwks(clerk: JwksAccess): Promise<Response> {
  return clerk.fetch(jwksUrl(clerk.apiUrl), {
    headers: { ...clerk.headers, Authorization: `Bearer ${clerk.secretKey}` },
    redirect: 'manual',
    signal: AbortSignal.timeout(clerk.timeoutMs),
  })
}

/** An unknown `kid` fetches the JWKS again at most this often: random kids cannot flood Clerk. */
const REFETCH_MIN_MS = 10_000

/** A PEM public key (Clerk dashboard → API keys → JWT public key): no network at all. */
export function pemKey(pem: string): KeySource {
  const body = pem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, '').replace(/\s+/g, '')
  const der = Uint8Array.from(atob(body), (c) => c.charCodeAt(0))
  const key = crypto.subtle.importKey('spki', der, RS256, false, ['verify'])
  key.catch(() => {}) // a bad PEM fails each request (500), not the process
  return () => key
}

/**
 * Clerk's signing keys from `{apiUrl}/v1/jwks` (with the secret key), fetched on demand, cached
 * for `ttlMs`, and fetched again early for an unknown `kid` (a key rotation), at most every 10 s.
 * Concurrent requests share one fetch.
 */
export function createJwksCache(options: JwksOptions): KeySource {
  const ttlMs = options.ttlMs ?? 3_600_000
  const url = jwksUrl(options.apiUrl)
  let keys = new Map<string, Promise<CryptoKey>>()
  let fetchedAt = -Infinity
  let loading: Promise<void> | null = null

  async function load(): Promise<void> {
    let response: Response
    try {
      response = await requestJwks(options)
    } catch (error) {
      const message = describeFetchFailure(error, url, options.timeoutMs)
      if ((error as { name?: unknown } | null)?.name === 'TimeoutError') throw new ProxyError(504, 'upstream_timeout', message)
      throw new ProxyError(503, 'upstream_unavailable', message, { 'Retry-After': '5' })
    }
    if (response.status === 401 || response.status === 403) {
      throw new ProxyError(502, 'upstream_auth_failed', `Clerk refused the secret key (${response.status} from GET ${displayUrl(url)})`)
    }
    const body = (await response.json().catch(() => null)) as { keys?: unknown } | null
    if (!response.ok || !Array.isArray(body?.keys)) {
      const message = `Clerk did not serve its signing keys (${response.status} from GET ${displayUrl(url)})`
      throw new ProxyError(503, 'upstream_unavailable', message, { 'Retry-After': '5' })
    }
    const next = new Map<string, Promise<CryptoKey>>()
    for (const jwk of body.keys as Record<string, unknown>[]) {
      if (typeof jwk?.kid !== 'string' || jwk.kty !== 'RSA') continue
      const { kty, n, e } = jwk as { kty: string; n: string; e: string }
      const key = crypto.subtle.importKey('jwk', { kty, n, e, alg: 'RS256', ext: true }, RS256, false, ['verify'])
      key.catch(() => {})
      next.set(jwk.kid, key)
    }
    keys = next
    fetchedAt = options.now()
  }

  return async (kid) => {
    if (typeof kid !== 'string') return null
    const now = options.now()
    const stale = now - fetchedAt > ttlMs
    if (stale || (!keys.has(kid) && now - fetchedAt > REFETCH_MIN_MS)) {
      loading ??= load().finally(() => {
        loading = null
      })
      await loading
    }
    return (await keys.get(kid)?.catch(() => null)) ?? null
  }
}
