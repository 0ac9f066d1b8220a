import { SessionKeeperError } from './SessionKeeperError.js'

/** The keeper was used before `start()` or after `stop()`. */
export class NotStartedError extends SessionKeeperError {
  override name = 'NotStartedError'
  declare readonly code: 'not_started'

  constructor(message: string) {
    super('not_started', message)
  }
}
