/** Set-Cookie directives as Clerk's Frontend API writes them on the app's domain. */

const YEAR_SECONDS = 31_536_000

export interface CookieAttributes {
  /** @default '/' */
  path?: string
  /** @default false */
  httpOnly?: boolean
  /** @default one year */
  maxAgeSeconds?: number
  secure: boolean
}

/** `name=value; Path=/; Max-Age=…[; HttpOnly][; Secure]; SameSite=Lax`, host-only. */
export function setCookie(name: string, value: string, attributes: CookieAttributes): string {
  const parts = [`${name}=${value}`, `Path=${attributes.path ?? '/'}`, `Max-Age=${attributes.maxAgeSeconds ?? YEAR_SECONDS}`]
  if (attributes.httpOnly) parts.push('HttpOnly')
  if (attributes.secure) parts.push('Secure')
  parts.push('SameSite=Lax')
  return parts.join('; ')
}

/** The directive that deletes `name` (same path and flags as when it was set). */
export function clearCookie(name: string, attributes: CookieAttributes): string {
  return setCookie(name, '', { ...attributes, maxAgeSeconds: 0 })
}
