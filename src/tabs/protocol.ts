/**
 * The cross-tab protocol, version 1: a discriminated union, validated field by field on
 * receipt. Only session JWTs (which page scripts can read anyway) ever cross it; never a
 * refresh token or a secret.
 */
import { MAX_HOLD_MS } from '../core/transport.js'

export const PROTOCOL_VERSION = 1

interface Envelope {
  v: typeof PROTOCOL_VERSION
  /** Random id of the sending tab. */
  from: string
}

/** A new tab asks the others for their current token. */
export interface HelloMessage extends Envelope {
  type: 'hello'
}

/** A token: a fresh refresh result, an answer to hello, or one the app set. */
export interface TokenMessage extends Envelope {
  type: 'token'
  token: string
  offsetMs: number
  /** Upper end of the measured offset interval. */
  offsetHighMs?: number
  skewKnown: boolean
  cause: 'refresh' | 'reply' | 'set'
}

/** The proxy answered 409 for this token: nobody asks again for it; the page needs Clerk. */
export interface RecoveryMessage extends Envelope {
  type: 'recovery'
  sessionId: string
  token: string
  reason: string
}

/** The proxy refuses tokens before they expire: every tab refreshes at expiry from now on. */
export interface ModeMessage extends Envelope {
  type: 'mode'
  refreshAtExpiry: boolean
  /** No tab refreshes before this (ms, the sender's clock; the proxy's `Retry-After`), if given. */
  retryAt?: number
  /** How long before expiry the proxy holds a request (ms, at most 2000), if it does. */
  holdMs?: number
}

/** The sender holds the refresh lock and has sent a request to the proxy. */
export interface RefreshingMessage extends Envelope {
  type: 'refreshing'
  sessionId: string
}

/** The sender's refresh failed; nobody should try again before `retryAt` (local ms). */
export interface RefreshFailedMessage extends Envelope {
  type: 'refresh-failed'
  sessionId: string
  code: string
  message: string
  attempt: number
  retryAt: number | null
}

/** The session ended: `signOut()` in the sending tab, or the proxy answered 401. */
export interface SignedOutMessage extends Envelope {
  type: 'signed-out'
  sessionId: string | null
  rejected: boolean
}

/** The message-based lock used where Web Locks are missing. */
export interface LockMessage extends Envelope {
  type: 'lock'
  op: 'claim' | 'held' | 'release'
  name: string
  ticket: number
}

export type TabMessage =
  | HelloMessage
  | TokenMessage
  | RefreshingMessage
  | RefreshFailedMessage
  | SignedOutMessage
  | LockMessage
  | RecoveryMessage
  | ModeMessage

/** Distributes Omit over the union, so each variant keeps its own fields. */
export type Outgoing = TabMessage extends infer M ? (M extends TabMessage ? Omit<M, 'v' | 'from'> : never) : never

const MAX_STRING = 16_384
const isString = (value: unknown, max = 200): value is string => typeof value === 'string' && value.length > 0 && value.length <= max
const isNumber = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value)

/** Returns the message when every field has the right type, else null: never trust, never throw. */
export function parseMessage(data: unknown): TabMessage | null {
  if (typeof data !== 'object' || data === null) return null
  const m = data as Record<string, unknown>
  if (m.v !== PROTOCOL_VERSION || !isString(m.from, 64)) return null
  switch (m.type) {
    case 'hello':
      return m as unknown as HelloMessage
    case 'token':
      return isString(m.token, MAX_STRING) &&
        isNumber(m.offsetMs) &&
        (m.offsetHighMs === undefined || isNumber(m.offsetHighMs)) &&
        typeof m.skewKnown === 'boolean' &&
        (m.cause === 'refresh' || m.cause === 'reply' || m.cause === 'set')
        ? (m as unknown as TokenMessage)
        : null
    case 'refreshing':
      return isString(m.sessionId) ? (m as unknown as RefreshingMessage) : null
    case 'refresh-failed':
      return isString(m.sessionId) &&
        isString(m.code, 100) &&
        typeof m.message === 'string' &&
        m.message.length <= 500 &&
        isNumber(m.attempt) &&
        m.attempt >= 0 &&
        (m.retryAt === null || isNumber(m.retryAt))
        ? (m as unknown as RefreshFailedMessage)
        : null
    case 'signed-out':
      return (m.sessionId === null || isString(m.sessionId)) && typeof m.rejected === 'boolean' ? (m as unknown as SignedOutMessage) : null
    case 'recovery':
      return isString(m.sessionId) && isString(m.token, MAX_STRING) && typeof m.reason === 'string' && m.reason.length <= 100
        ? (m as unknown as RecoveryMessage)
        : null
    case 'mode':
      return typeof m.refreshAtExpiry === 'boolean' &&
        (m.retryAt === undefined || isNumber(m.retryAt)) &&
        (m.holdMs === undefined || (isNumber(m.holdMs) && m.holdMs >= 0 && m.holdMs <= MAX_HOLD_MS))
        ? (m as unknown as ModeMessage)
        : null
    case 'lock':
      return (m.op === 'claim' || m.op === 'held' || m.op === 'release') && isString(m.name) && isNumber(m.ticket)
        ? (m as unknown as LockMessage)
        : null
    default:
      return null
  }
}
