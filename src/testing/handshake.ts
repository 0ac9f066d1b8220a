import { clearCookie, setCookie } from './cookies.js'
import { randomId, signJwt, type SigningKey } from './jwt.js'

/** Cookie and query names of Clerk's handshake, as `@clerk/backend` reads them (`constants.ts`). */
export const HANDSHAKE = {
  nonce: '__clerk_handshake_nonce',
  token: '__clerk_handshake',
  devBrowser: '__clerk_db_jwt',
  clientUat: '__client_uat',
  session: '__session',
  refresh: '__refresh',
} as const

export interface HandshakeCookies {
  /** The session's fresh token and refresh token, or null: the browser is signed out. */
  session: { jwt: string; refreshToken: string } | null
  /** `__client_uat`: when the client last changed, in seconds (0 when signed out). */
  clientUat: number
  suffix: string
  /** Also `__session_<sfx>` and `__client_uat_<sfx>` (the middleware asked `suffixed_cookies=true`). */
  suffixed: boolean
  /** Development instances: the dev-browser token the app keeps in `__clerk_db_jwt`. */
  devBrowser: string | null
  secure: boolean
}

/**
 * The Set-Cookie directives a handshake hands to the app: a fresh `__session` (and
 * `__session_<sfx>`), `__client_uat` (and `_<sfx>`), HttpOnly `__refresh_<sfx>`, the dev-browser
 * token on development instances, and the deletion of the handshake's own cookies. Signed out:
 * the same names deleted (`__client_uat` is `0`). The `__session` directives come last: Clerk's
 * SDK takes the token from the LAST `__session*` directive.
 */
export function handshakeDirectives(c: HandshakeCookies): string[] {
  const plain = { secure: c.secure }
  // Signed out: both forms of every name go, whatever the middleware uses.
  const suffixed = c.suffixed || !c.session
  const forms = (name: string) => (suffixed ? [name, `${name}_${c.suffix}`] : [name])
  const directives = [
    clearCookie(HANDSHAKE.nonce, { ...plain, httpOnly: true }),
    clearCookie(HANDSHAKE.token, { ...plain, httpOnly: true }),
  ]
  for (const name of forms(HANDSHAKE.clientUat)) directives.push(setCookie(name, String(c.session ? c.clientUat : 0), plain))
  const refresh = `${HANDSHAKE.refresh}_${c.suffix}`
  directives.push(
    c.session
      ? setCookie(refresh, c.session.refreshToken, { ...plain, httpOnly: true })
      : clearCookie(refresh, { ...plain, httpOnly: true }),
  )
  if (c.devBrowser) for (const name of forms(HANDSHAKE.devBrowser)) directives.push(setCookie(name, c.devBrowser, plain))
  for (const name of forms(HANDSHAKE.session).reverse())
    directives.push(c.session ? setCookie(name, c.session.jwt, plain) : clearCookie(name, plain))
  return directives
}

/** A handshake handed over as a signed JWT (`__clerk_handshake`): `{ handshake: [directives] }`. */
export function handshakeToken(key: SigningKey, directives: string[], nowMs: number): string {
  return signJwt(key, { handshake: directives, iat: Math.floor(nowMs / 1000) })
}

const NONCE_TTL_MS = 300_000
const MAX_NONCES = 10_000

/**
 * Handshakes handed over by nonce: the Frontend API keeps the directives, the app's backend
 * fetches them once from `GET /v1/clients/handshake_payload?nonce=…` (secret key).
 */
export function createNonces(now: () => number) {
  const payloads = new Map<string, { directives: string[]; expiresAt: number }>()

  function prune(): void {
    for (const [nonce, entry] of payloads) if (entry.expiresAt <= now()) payloads.delete(nonce)
    while (payloads.size >= MAX_NONCES) {
      const [oldest] = payloads.keys()
      if (oldest === undefined) break
      payloads.delete(oldest)
    }
  }

  return {
    put(directives: string[]): string {
      prune()
      const nonce = randomId('', 24)
      payloads.set(nonce, { directives, expiresAt: now() + NONCE_TTL_MS })
      return nonce
    },
    /** The directives, once: a nonce is spent when read, and worthless after five minutes. */
    take(nonce: string): string[] | null {
      const entry = payloads.get(nonce)
      payloads.delete(nonce)
      return entry && entry.expiresAt > now() ? entry.directives : null
    },
  }
}

export type Nonces = ReturnType<typeof createNonces>
