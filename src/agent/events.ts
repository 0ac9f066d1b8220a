import type { HeldToken } from '../core/timing.js'
import type { AnySessionKeeperError } from '../errors/AnySessionKeeperError.js'
import type { RefreshError } from '../errors/RefreshError.js'
import type { TokenSource } from './state.js'

/**
 * Everything that changes what a tab knows arrives as one of these: the outcome of its own
 * request, a message from another tab, or something the app or the page did. The `Agent`
 * applies them; nothing else writes its state.
 */
export type AgentEvent =
  /** A token to adopt if it is newer (or authoritative: this tab's own refresh answer). */
  | { type: 'token'; held: HeldToken; source: TokenSource; from: string; suspect?: boolean }
  /** A refresh failed; no tab retries before `retryAt` (Infinity: not until asked). */
  | { type: 'refresh-failed'; error: RefreshError; attempt: number; retryAt: number; local: boolean }
  /** The proxy answered 409 for this token: no tab asks for it again. */
  | { type: 'recovery'; tokenRaw: string; error: RefreshError; local: boolean }
  /** The proxy refuses tokens before expiry: refresh at expiry from now on, not before `retryAt`. */
  | { type: 'refresh-at-expiry'; retryAt: number; local: boolean }
  /** The proxy answered with the very token sent (a replay gone wrong): a success, retried only after `retryAt`. */
  | { type: 'no-progress'; attempt: number; retryAt: number }
  /** The same token, with a clock offset measured from the proxy's `Date`. */
  | { type: 'clock-measured'; held: HeldToken }
  /** The session ended: here only, or in every tab (`broadcast`). */
  | { type: 'session-ended'; error: RefreshError | null; broadcast: boolean }
  /** Another tab holds the refresh lock and sent its request. */
  | { type: 'remote-refreshing'; from: string }
  /** An error to show in `state.error` (a malformed cookie while no token is held). */
  | { type: 'error'; error: AnySessionKeeperError }
  /** Whatever another tab announced is over, or was waited for long enough. */
  | { type: 'remote-done' }
  /** A message that was read and dropped: malformed, stale, foreign or out of bounds. */
  | { type: 'ignored' }
