import type { HeldToken } from '../core/timing.js'
import type { AnySessionKeeperError } from '../errors/AnySessionKeeperError.js'
import type { RefreshError } from '../errors/RefreshError.js'
import type { Backoff, TokenSource } from './state.js'

/**
 * What one tab knows, readable by everyone and written only by its `Agent` (through `apply`):
 * the fields are protected, the getters public.
 */
export abstract class TabView {
  protected _held: HeldToken | null = null
  /** Where the held token came from: a token learned from the channel yields to our own answer. */
  protected _heldSource: TokenSource | null = null
  protected _signedOut = false
  protected _loading = true
  /** A token found without a clock measurement that contradicts the local clock. */
  protected _suspect = false
  /** The session that ended here: its tokens are never adopted again (late answers). */
  protected _endedSessionId: string | null = null
  protected _backoff: Backoff | null = null
  /** Another tab announced a refresh and has not reported its outcome yet. */
  protected _remote: { from: string; since: number } | null = null
  /** The proxy answered 409 for this token: nobody asks for it again. */
  protected _recovery: { tokenRaw: string; error: RefreshError } | null = null
  /** The proxy refuses tokens before expiry: refresh at expiry instead. */
  protected _atExpiry = false
  protected _running = false

  /** The last error published in the state. */
  abstract get lastError(): AnySessionKeeperError | null

  get running(): boolean {
    return this._running
  }
  get held(): HeldToken | null {
    return this._held
  }
  get signedOut(): boolean {
    return this._signedOut
  }
  get loading(): boolean {
    return this._loading
  }
  get suspect(): boolean {
    return this._suspect
  }
  get endedSessionId(): string | null {
    return this._endedSessionId
  }
  get refreshAtExpiry(): boolean {
    return this._atExpiry
  }
  /** The 409 that stopped refreshes of the token held, if it did. */
  get recoveryError(): RefreshError | null {
    return this._recovery && this._recovery.tokenRaw === this._held?.token.raw ? this._recovery.error : null
  }
  /** Another tab's announced refresh, while it has not reported its outcome. */
  get remote(): { readonly from: string; readonly since: number } | null {
    return this._remote
  }
  /** Failures in a row so far (-1: none). */
  get failedAttempts(): number {
    return this._backoff?.attempt ?? -1
  }
  /** Retries are not allowed before this time (Infinity: not until asked). */
  get retryAt(): number {
    return this._backoff?.retryAt ?? 0
  }
}
