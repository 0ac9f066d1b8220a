import { SessionKeeperError } from './SessionKeeperError.js'

/** A token that cannot be used: not a JWT, or missing the claims the agent needs. */
export class TokenError extends SessionKeeperError {
  override name = 'TokenError'

  constructor(message: string, options?: { cause?: unknown }) {
    super('token_malformed', message, options)
  }
}
