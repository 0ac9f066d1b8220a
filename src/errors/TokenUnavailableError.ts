import { SessionKeeperError } from './SessionKeeperError.js'

/**
 * `getToken()` could not produce a valid token within its bounded wait. `cause` is the last
 * refresh error (offline, rate limited, proxy down …) when there was one.
 */
export class TokenUnavailableError extends SessionKeeperError {
  override name = 'TokenUnavailableError'
  declare readonly code: 'token_unavailable'

  constructor(message: string, options?: { cause?: unknown }) {
    super('token_unavailable', message, options)
  }
}
