import { createHash, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto'

/** An RS256 key pair with a key id, as the emulator's JWKS publishes it. */
export interface SigningKey {
  kid: string
  privateKey: KeyObject
  publicKey: KeyObject
}

export function createSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  return { kid: `ins_${randomBytes(8).toString('hex')}`, privateKey, publicKey }
}

const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

export function signJwt(key: SigningKey, claims: Record<string, unknown>): string {
  const input = `${encode({ alg: 'RS256', typ: 'JWT', kid: key.kid })}.${encode(claims)}`
  return `${input}.${sign('sha256', Buffer.from(input), key.privateKey).toString('base64url')}`
}

/** Returns the claims when the signature is ours and the header says RS256, else null. */
export function verifyJwt(key: SigningKey, jwt: string): Record<string, unknown> | null {
  const parts = jwt.split('.')
  const [head, body, signature] = parts
  if (parts.length !== 3 || head === undefined || body === undefined || signature === undefined) return null
  try {
    const header = JSON.parse(Buffer.from(head, 'base64url').toString())
    if (header.alg !== 'RS256' || header.kid !== key.kid) return null
    const ok = verify('sha256', Buffer.from(`${head}.${body}`), key.publicKey, Buffer.from(signature, 'base64url'))
    return ok ? JSON.parse(Buffer.from(body, 'base64url').toString()) : null
  } catch {
    return null
  }
}

export function publicJwk(key: SigningKey): Record<string, unknown> {
  const jwk = key.publicKey.export({ format: 'jwk' })
  return { ...jwk, kid: key.kid, alg: 'RS256', use: 'sig' }
}

/** Clerk's cookie suffix, synchronously (the emulator runs on Node). */
export function cookieSuffixSync(publishableKey: string): string {
  return createHash('sha1').update(publishableKey).digest('base64url').slice(0, 8)
}

export function randomId(prefix: string, bytes = 12): string {
  return `${prefix}${randomBytes(bytes).toString('base64url').replace(/[-_]/g, 'x')}`
}

/** A publishable key as Clerk makes them: `pk_test_`/`pk_live_` + base64(`<frontend API host>$`). */
export function publishableKeyFor(host: string, instance: 'test' | 'live' = 'test'): string {
  return `pk_${instance}_${Buffer.from(`${host}$`).toString('base64')}`
}
