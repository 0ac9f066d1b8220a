import ky, { TimeoutError } from 'ky'
import { RefreshError } from '../errors/RefreshError.js'
import { decodeSessionToken, type SessionToken } from './token.js'

/**
 * The proxy's word on Clerk's clock (epoch ms): Clerk read at most this when the request arrived.
 * On 200 and 503 `not_yet_expired`, once the proxy knows.
 */
export const CLERK_TIME_HEADER = 'Session-Keeper-Clerk-Time'
/** Beside it: Clerk's clock read at least this (epoch ms) as the proxy answered. */
export const CLERK_TIME_MIN_HEADER = 'Session-Keeper-Clerk-Time-Min'
/** On 503 `not_yet_expired`: how long before expiry the proxy holds a request (ms). */
export const HOLD_HEADER = 'Session-Keeper-Hold'
/** A proxy holds a request this long before expiry at most (the contract's bound). */
export const MAX_HOLD_MS = 2_000

export type FetchLike = (input: Request | string | URL, init?: RequestInit) => Promise<Response>

export interface TransportOptions {
  endpoint: string
  fetch: FetchLike
  timeoutMs: number
  headers: Record<string, string>
}

export interface RefreshAnswer {
  token: SessionToken
  /** The proxy answered with an earlier result (`"replayed": true`): not issued just now. */
  replayed: boolean
  /** Clerk's clock read at most this (epoch ms) when the request reached the proxy, if it said. */
  clerkTime?: number | undefined
  /** Clerk's clock read at least this (epoch ms) when the proxy answered, if it said. */
  clerkTimeMin?: number | undefined
}

export type Transport = (current: SessionToken, signal?: AbortSignal) => Promise<RefreshAnswer>

/**
 * The HTTP side of a refresh: one POST to the proxy as the README's wire protocol says, no
 * retries (retries are coordinated across tabs by the agent). Every failure is a RefreshError,
 * except an abort through `signal`, which is rethrown as it is.
 */
export function createTransport(options: TransportOptions): Transport {
  const client = ky.create({
    method: 'post',
    credentials: 'same-origin',
    retry: 0,
    timeout: options.timeoutMs,
    throwHttpErrors: false,
    headers: options.headers,
    // Wrapped so a fetch replaced after start-up (tests, polyfills) is the one used.
    fetch: (input, init) => options.fetch(input, init),
  })

  return async (current, signal) => {
    let response: Response
    try {
      response = await client(options.endpoint, {
        json: { session_id: current.sessionId, expired_token: current.raw },
        signal,
      })
    } catch (cause) {
      if (cause instanceof TimeoutError) {
        throw new RefreshError('refresh_timeout', `No answer from the proxy within ${options.timeoutMs} ms`, { cause })
      }
      if (signal?.aborted) throw cause
      throw new RefreshError('refresh_network', 'The refresh proxy could not be reached', { cause })
    }
    return response.ok ? readToken(response, current) : Promise.reject(await toError(response))
  }
}

async function readToken(response: Response, current: SessionToken): Promise<RefreshAnswer> {
  const body = await readJson(response)
  const jwt = isObject(body) ? body.jwt : undefined
  let token: SessionToken
  try {
    token = decodeSessionToken(jwt)
  } catch (cause) {
    throw new RefreshError('refresh_bad_response', 'The proxy answered 200 without a valid "jwt"', {
      status: response.status,
      cause,
    })
  }
  if (token.sessionId !== current.sessionId) {
    throw new RefreshError('refresh_bad_response', 'The proxy answered with a token of another session', {
      status: response.status,
    })
  }
  return {
    token,
    replayed: isObject(body) && body.replayed === true,
    clerkTime: headerNumber(response, CLERK_TIME_HEADER),
    clerkTimeMin: headerNumber(response, CLERK_TIME_MIN_HEADER),
  }
}

/** A header of non-negative whole milliseconds; undefined when absent or anything else. */
function headerNumber(response: Response, name: string): number | undefined {
  const value = response.headers.get(name)
  return value !== null && /^\d{1,16}$/.test(value.trim()) ? Number(value) : undefined
}

async function toError(response: Response): Promise<RefreshError> {
  const body = await readJson(response)
  const detail = isObject(body) && isObject(body.error) ? body.error : {}
  const serverCode = typeof detail.code === 'string' ? detail.code.slice(0, 100) : undefined
  const reason = typeof detail.reason === 'string' ? detail.reason.slice(0, 100) : undefined
  const serverMessage = typeof detail.message === 'string' ? `: ${detail.message.slice(0, 300)}` : ''
  const status = response.status
  const date = Date.parse(response.headers.get('date') ?? '')
  const details = {
    status,
    serverCode,
    reason,
    retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
    serverDate: Number.isNaN(date) ? undefined : date,
    holdMs: headerNumber(response, HOLD_HEADER),
    clerkTime: headerNumber(response, CLERK_TIME_HEADER),
    clerkTimeMin: headerNumber(response, CLERK_TIME_MIN_HEADER),
  }
  const text = `The proxy answered ${status}${serverMessage}`
  // Only "the session is over" signs out; any other refusal of this browser's refresh is recovery.
  if (status === 401) return new RefreshError(serverCode === 'session_ended' ? 'refresh_rejected' : 'recovery_required', text, details)
  if (status === 409) return new RefreshError('recovery_required', text, details)
  if (status === 429) return new RefreshError('refresh_rate_limited', text, details)
  if (status === 503 && serverCode === 'not_yet_expired') return new RefreshError('refresh_not_yet_expired', text, details)
  // 408: the request (its body) did not reach the proxy in time; worth another try.
  if (status === 408) return new RefreshError('refresh_timeout', text, details)
  if (status >= 500) return new RefreshError('refresh_unavailable', text, details)
  return new RefreshError('refresh_refused', text, details)
}

async function readJson(response: Response): Promise<unknown> {
  try {
    return JSON.parse(await response.text())
  } catch {
    return undefined
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** `Retry-After` as delay-seconds or an HTTP date, in ms; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}
