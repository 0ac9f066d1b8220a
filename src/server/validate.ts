import { decodeSessionToken, type SessionToken } from '../core/token.js'
import { ProxyError } from './errors.js'

export interface ValidatedRequest {
  sessionId: string
  token: SessionToken
  origin: string
}

const SESSION_ID = /^[A-Za-z0-9_-]{1,128}$/
const ALLOWED_FIELDS = new Set(['session_id', 'expired_token'])

/**
 * Method, origin and content type, before the body is read: a foreign page, a form post or a
 * GET never gets further.
 */
export function checkEnvelope(request: Request, allowed: (origin: string) => boolean): string {
  if (request.method !== 'POST') {
    throw new ProxyError(405, 'method_not_allowed', 'Only POST is accepted', { Allow: 'POST' })
  }
  const origin = request.headers.get('origin')
  if (!origin || origin === 'null' || !allowed(origin)) {
    throw new ProxyError(403, 'origin_not_allowed', 'The request origin is not allowed')
  }
  const site = request.headers.get('sec-fetch-site')
  if (site === 'cross-site') throw new ProxyError(403, 'origin_not_allowed', 'Cross-site requests are not allowed')
  const type = (request.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase()
  if (type !== 'application/json') {
    throw new ProxyError(415, 'unsupported_media_type', 'The body must be application/json')
  }
  return origin
}

/**
 * Reads at most `limit` bytes within `timeoutMs`: a longer body (declared or streamed) is a 413,
 * a body that drips in slower than that a 408. Called only once the envelope passed.
 */
export async function readBody(request: Request, limit: number, timeoutMs: number): Promise<string> {
  const declared = Number(request.headers.get('content-length') ?? '0')
  if (declared > limit) throw tooLarge(limit)
  if (!request.body) return ''
  const reader = request.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ProxyError(408, 'body_timeout', `The body did not arrive within ${timeoutMs} ms`)), timeoutMs)
  })
  deadline.catch(() => {})
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>
    try {
      chunk = await Promise.race([reader.read(), deadline])
    } catch (error) {
      clearTimeout(timer)
      await reader.cancel().catch(() => {})
      if (error instanceof ProxyError) throw error
      throw new ProxyError(400, 'invalid_request', 'The body could not be read')
    }
    const { done, value } = chunk
    if (done) break
    size += value.byteLength
    if (size > limit) {
      clearTimeout(timer)
      await reader.cancel().catch(() => {})
      throw tooLarge(limit)
    }
    chunks.push(value)
  }
  clearTimeout(timer)
  const bytes = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    bytes.set(chunk, offset)
    offset += chunk.byteLength
  }
  return new TextDecoder('utf-8', { fatal: false }).decode(bytes)
}

function tooLarge(limit: number): ProxyError {
  return new ProxyError(413, 'body_too_large', `The body must not exceed ${limit} bytes`)
}

/** `{ session_id, expired_token }`, strictly; `expired_token` may instead come from the cookie. */
export function parseRefreshBody(text: string, cookieToken: string | undefined): { sessionId: string; token: SessionToken } {
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    throw new ProxyError(400, 'invalid_json', 'The body is not valid JSON')
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ProxyError(400, 'invalid_request', 'The body must be a JSON object')
  }
  const fields = body as Record<string, unknown>
  for (const key of Object.keys(fields)) {
    if (!ALLOWED_FIELDS.has(key)) throw new ProxyError(400, 'invalid_request', `Unknown field "${key.slice(0, 40)}"`)
  }
  const sessionId = fields.session_id
  if (typeof sessionId !== 'string' || !SESSION_ID.test(sessionId)) {
    throw new ProxyError(400, 'invalid_request', '"session_id" must be a session id')
  }
  const raw = fields.expired_token ?? cookieToken
  if (fields.expired_token !== undefined && typeof fields.expired_token !== 'string') {
    throw new ProxyError(400, 'invalid_request', '"expired_token" must be a string')
  }
  if (raw === undefined) throw new ProxyError(400, 'invalid_request', '"expired_token" is missing')
  let token: SessionToken
  try {
    token = decodeSessionToken(raw)
  } catch {
    throw new ProxyError(400, 'token_malformed', '"expired_token" is not a session JWT')
  }
  if (token.sessionId !== sessionId) {
    throw new ProxyError(400, 'session_mismatch', '"session_id" does not match the token')
  }
  return { sessionId, token }
}
