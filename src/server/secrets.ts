const encoder = new TextEncoder()

function base64url(bytes: Uint8Array): string {
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

function fromBase64url(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'))
  return Uint8Array.from(binary, (c) => c.charCodeAt(0))
}

/**
 * Keys for what the proxy keeps in its store, derived from one secret (the Clerk secret key, or
 * the `storeSecret` option): an HMAC key that turns refresh cookies and tokens into opaque key
 * material, and an AES-GCM key that encrypts stored refresh results. A reader of the store can
 * neither find a refresh cookie nor turn a stored entry into a session token.
 */
export interface StoreSecrets {
  /** Keyed hash, base64url: the same input gives the same output, and nothing else can. */
  hash(...parts: string[]): Promise<string>
  seal(plaintext: string, context: string): Promise<string>
  /** The plaintext, or null when the value was not sealed with this secret and context. */
  open(sealed: string, context: string): Promise<string | null>
}

export function createStoreSecrets(secret: string): StoreSecrets {
  const root = crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign'])
  const derive = async (label: string) =>
    new Uint8Array(await crypto.subtle.sign('HMAC', await root, encoder.encode(`session-keeper/v1/${label}`)))
  const hmacKey = derive('hash').then((raw) => crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']))
  const aesKey = derive('seal').then((raw) => crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt']))

  return {
    async hash(...parts) {
      const data = encoder.encode(parts.join('\u0000'))
      return base64url(new Uint8Array(await crypto.subtle.sign('HMAC', await hmacKey, data))).slice(0, 32)
    },
    async seal(plaintext, context) {
      const iv = crypto.getRandomValues(new Uint8Array(12))
      const params = { name: 'AES-GCM', iv, additionalData: encoder.encode(context) }
      const cipher = new Uint8Array(await crypto.subtle.encrypt(params, await aesKey, encoder.encode(plaintext)))
      return `${base64url(iv)}.${base64url(cipher)}`
    },
    async open(sealed, context) {
      const [iv, cipher] = sealed.split('.')
      if (!iv || !cipher) return null
      try {
        const params = { name: 'AES-GCM', iv: fromBase64url(iv), additionalData: encoder.encode(context) }
        return new TextDecoder().decode(await crypto.subtle.decrypt(params, await aesKey, fromBase64url(cipher)))
      } catch {
        return null
      }
    },
  }
}

export { base64url, fromBase64url }
