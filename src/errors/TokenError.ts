import { SessionKeeperError } from './SessionKeeperError.js'

/** A token that cannot be used: not a JWT, or missing the claims the agent needs. */
export class TokenError extends SessionKeeperError {
  override name = 'TokenError'
  declare readonly code: 'token_malformed'

  constructor(message: string, options?: { cause?: unknown }) {
    super('token_malformed', message, options)
  }
}
