import { base64url } from './secrets.js'

/**
 * Every value of every cookie in a `Cookie` header, in header order. A name can appear more than
 * once: a sibling subdomain can "toss" a cookie of the same name onto the parent domain, and the
 * browser sends both.
 */
export function parseCookies(header: string | null): Map<string, string[]> {
  const cookies = new Map<string, string[]>()
  if (!header) return cookies
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq <= 0) continue
    const name = part.slice(0, eq).trim()
    let value = part.slice(eq + 1).trim()
    if (value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1)
    try {
      value = decodeURIComponent(value)
    } catch {
      // kept as sent
    }
    const values = cookies.get(name)
    if (values) values.push(value)
    else cookies.set(name, [value])
  }
  return cookies
}

/**
 * The values of one cookie that can be used: distinct, not empty or only whitespace, at most
 * `max`, in header order. An empty `__refresh_<suffix>=` is never a credential to send Clerk.
 */
export function usableValues(values: readonly string[] | undefined, max: number): string[] {
  return [...new Set(values ?? [])].filter((value) => value.trim() !== '').slice(0, max)
}

/**
 * Whether this browser signed out of Clerk: Clerk writes `__client_uat=0` (and `_<suffix>`) when
 * its client signs out (the hosted sign-out page, `signOut()` in any tab). As Clerk's middleware
 * reads them, a client whose either cookie holds a time is still active (with the suffixed one
 * at 0 it reads the unsuffixed cookies), so only `0` in every one there is signed out; none says
 * nothing.
 */
export function signedOutOfClerk(cookies: Map<string, string[]>, suffix: string | null): boolean {
  const values = [suffix ? cookies.get(`__client_uat_${suffix}`)?.[0] : undefined, cookies.get('__client_uat')?.[0]]
  const present = values.filter((value) => value !== undefined)
  return present.length > 0 && present.every((value) => value === '0')
}

/**
 * Clerk's cookie suffix: the first 8 characters of base64url(SHA-1(publishable key)). Clerk
 * names the refresh cookie `__refresh_<suffix>` and the session cookie also `__session_<suffix>`.
 */
export async function cookieSuffix(publishableKey: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-1', new TextEncoder().encode(publishableKey))
  return base64url(new Uint8Array(digest)).slice(0, 8)
}

/** The frontend API host inside a publishable key (`pk_test_`/`pk_live_` + base64(`host$`)), or null. */
export function frontendApiOf(publishableKey: string): string | null {
  const match = /^pk_(?:test|live)_([A-Za-z0-9+/=_-]+)$/.exec(publishableKey)
  if (!match) return null
  try {
    const decoded = atob(match[1]!.replace(/-/g, '+').replace(/_/g, '/'))
    return decoded.length > 1 && decoded.endsWith('$') ? decoded.slice(0, -1) : null
  } catch {
    return null
  }
}

export interface SessionCookieOptions {
  /** @default '__session' (and `__session_<suffix>` beside it, as Clerk's browser SDK writes) */
  name?: string
  /** @default true when the request came over https */
  secure?: boolean
  /** @default 'Lax' */
  sameSite?: 'Lax' | 'Strict' | 'None'
  /** @default none (host-only) */
  domain?: string
  /** @default '/' */
  path?: string
  /**
   * The cookie outlives the JWT inside it, as Clerk's own cookie does: if it vanished, Clerk's
   * middleware would see `__client_uat` without a session and send the user through a handshake.
   * @default 31_536_000 (one year)
   */
  maxAgeSeconds?: number
}

const YEAR_SECONDS = 31_536_000

/** A session cookie as Clerk's browser SDK writes it: not HttpOnly, `Path=/`, `SameSite=Lax`, a year. */
export function sessionCookie(name: string, jwt: string, secureRequest: boolean, options: SessionCookieOptions = {}): string {
  const parts = [`${name}=${jwt}`, `Path=${options.path ?? '/'}`]
  if (options.domain) parts.push(`Domain=${options.domain}`)
  parts.push(`Max-Age=${options.maxAgeSeconds ?? YEAR_SECONDS}`)
  if (options.secure ?? secureRequest) parts.push('Secure')
  parts.push(`SameSite=${options.sameSite ?? 'Lax'}`)
  return parts.join('; ')
}
