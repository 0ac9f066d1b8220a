/** Parses a `Cookie` request header into a map (first occurrence wins, as browsers order them). */
export function parseCookies(header: string | null): Map<string, string> {
  const cookies = new Map<string, string>()
  if (!header) return cookies
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq <= 0) continue
    const name = part.slice(0, eq).trim()
    if (cookies.has(name)) continue
    let value = part.slice(eq + 1).trim()
    if (value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1)
    try {
      cookies.set(name, decodeURIComponent(value))
    } catch {
      cookies.set(name, value)
    }
  }
  return cookies
}

/**
 * Clerk's cookie suffix: the first 8 characters of base64url(SHA-1(publishable key)). Clerk
 * names the refresh cookie `__refresh_<suffix>` and the session cookie also `__session_<suffix>`.
 */
export async function cookieSuffix(publishableKey: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-1', new TextEncoder().encode(publishableKey))
  return base64url(new Uint8Array(digest)).slice(0, 8)
}

function base64url(bytes: Uint8Array): string {
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

export interface SessionCookieOptions {
  /** @default '__session' */
  name?: string
  /** @default true when the request came over https */
  secure?: boolean
  /** @default 'Lax' */
  sameSite?: 'Lax' | 'Strict' | 'None'
  /** @default none (host-only) */
  domain?: string
  /** @default '/' */
  path?: string
}

/**
 * The session cookie as Clerk sets it: readable by page scripts (the frontend reads it), not
 * HttpOnly, `Path=/`, `SameSite=Lax`, `Secure` on https; it expires with the token.
 */
export function sessionCookie(jwt: string, maxAgeSeconds: number, secureRequest: boolean, options: SessionCookieOptions = {}): string {
  const parts = [`${options.name ?? '__session'}=${jwt}`, `Path=${options.path ?? '/'}`]
  if (options.domain) parts.push(`Domain=${options.domain}`)
  parts.push(`Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`)
  if (options.secure ?? secureRequest) parts.push('Secure')
  parts.push(`SameSite=${options.sameSite ?? 'Lax'}`)
  return parts.join('; ')
}
