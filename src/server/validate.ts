import { decodeSessionToken, type SessionToken } from '../core/token.js'
import { ProxyError } from './errors.js'

export interface ValidatedRequest {
  sessionId: string
  token: SessionToken
  origin: string
}

const SESSION_ID = /^[A-Za-z0-9_-]{1,128}$/
const ALLOWED_FIELDS = ['session_id', 'expired_token']

/**
 * Method, origin and content type, before the body is read: a foreign page, a form post or a
 * GET never gets further. `allowed`: the origins that may refresh (never empty).
 */
export function checkEnvelope(request: Request, allowed: readonly string[]): string {
  if (request.method !== 'POST') {
    throw new ProxyError(405, 'method_not_allowed', `Only POST is accepted, not ${request.method.slice(0, 20)}`, { Allow: 'POST' })
  }
  const origin = request.headers.get('origin')
  const expected = `allowed: ${allowed.join(', ')}`
  if (!origin) throw new ProxyError(403, 'origin_not_allowed', `The request has no Origin header; ${expected}`)
  if (origin === 'null' || !allowed.includes(origin)) {
    const seen = JSON.stringify(origin.slice(0, 200))
    throw new ProxyError(403, 'origin_not_allowed', `The request origin ${seen} is not allowed; ${expected}`)
  }
  const site = request.headers.get('sec-fetch-site')
  if (site === 'cross-site') {
    throw new ProxyError(403, 'origin_not_allowed', 'Cross-site requests are not allowed (Sec-Fetch-Site: cross-site)')
  }
  const declared = request.headers.get('content-type')
  const type = (declared ?? '').split(';')[0]!.trim().toLowerCase()
  if (type !== 'application/json') {
    const got = declared === null ? 'no Content-Type was sent' : `not ${JSON.stringify(type.slice(0, 100))}`
    throw new ProxyError(415, 'unsupported_media_type', `The body must be application/json, ${got}`)
  }
  return origin
}

/** 413 `body_too_large`; `seen` says what gave it away (a `Content-Length`, or more bytes arriving). */
export function bodyTooLarge(limit: number, seen: string): ProxyError {
  return new ProxyError(413, 'body_too_large', `The body must not exceed ${limit} bytes (\`maxBodyBytes\`); ${seen}`)
}

/**
 * Reads at most `limit` bytes within `timeoutMs`: a longer body (declared or streamed) is a 413,
 * a body that drips in slower than that a 408. Called only once the envelope passed.
 */
export async function readBody(request: Request, limit: number, timeoutMs: number): Promise<string> {
  const declared = Number(request.headers.get('content-length') ?? '0')
  if (declared > limit) throw bodyTooLarge(limit, `Content-Length is ${declared}`)
  if (!request.body) return ''
  const reader = request.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const message = `The body did not arrive within ${timeoutMs} ms (\`bodyTimeoutMs\`); ${size} bytes came`
      reject(new ProxyError(408, 'body_timeout', message))
    }, timeoutMs)
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
      throw bodyTooLarge(limit, `more arrived`)
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

/** What a value is, for a message, without its content (it may be a token). */
function kind(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string') return `a string of ${value.length} characters`
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`
}

function sessionIdProblem(value: unknown): string {
  if (value === undefined) return 'it is missing'
  if (typeof value !== 'string' || value.length === 0 || value.length > 128) return `got ${kind(value)}`
  return 'got other characters'
}

/**
 * `{ session_id, expired_token }`, strictly; `expired_token` may instead come from the session
 * cookie (`cookieName`). Messages describe what came, never quote a value that may be a token.
 */
export function parseRefreshBody(
  text: string,
  cookieToken: string | undefined,
  cookieName = '__session',
): { sessionId: string; token: SessionToken } {
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    // Not the parser's message: it quotes the text, which holds the token.
    const what = text.trim() === '' ? 'The body is empty' : `The body (${text.length} characters) is not valid JSON`
    throw new ProxyError(400, 'invalid_json', `${what}; expected { "session_id", "expired_token" }`)
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ProxyError(400, 'invalid_request', `The body must be a JSON object, not ${kind(body)}`)
  }
  const fields = body as Record<string, unknown>
  for (const key of Object.keys(fields)) {
    if (!ALLOWED_FIELDS.includes(key)) {
      throw new ProxyError(
        400,
        'invalid_request',
        `Unknown field ${JSON.stringify(key.slice(0, 40))}; the fields are ${ALLOWED_FIELDS.join(', ')}`,
      )
    }
  }
  const sessionId = fields.session_id
  if (typeof sessionId !== 'string' || !SESSION_ID.test(sessionId)) {
    throw new ProxyError(
      400,
      'invalid_request',
      `"session_id" must be a session id (1 to 128 of A-Z a-z 0-9 _ -); ${sessionIdProblem(sessionId)}`,
    )
  }
  if (fields.expired_token !== undefined && typeof fields.expired_token !== 'string') {
    throw new ProxyError(400, 'invalid_request', `"expired_token" must be a string, not ${kind(fields.expired_token)}`)
  }
  const raw = fields.expired_token ?? cookieToken
  if (raw === undefined)
    throw new ProxyError(400, 'invalid_request', `"expired_token" is missing, and no ${cookieName} cookie came with the request`)
  let token: SessionToken
  try {
    token = decodeSessionToken(raw)
  } catch (error) {
    // decodeSessionToken's messages describe the token's shape, never its content.
    const from = fields.expired_token === undefined ? `The ${cookieName} cookie` : '"expired_token"'
    throw new ProxyError(400, 'token_malformed', `${from} is not a session JWT: ${(error as Error).message}`)
  }
  if (token.sessionId !== sessionId) {
    throw new ProxyError(
      400,
      'session_mismatch',
      `"session_id" is ${sessionId}, but the token is of session ${JSON.stringify(token.sessionId.slice(0, 128))}`,
    )
  }
  return { sessionId, token }
}
