import type { SessionErrorCode } from './codes.js'

export type { SessionErrorCode } from './codes.js'

/** Base class of every error thrown or reported by the agent; `code` is stable (see `codes.ts`). */
export class SessionKeeperError extends Error {
  override name = 'SessionKeeperError'
  readonly code: SessionErrorCode

  constructor(code: SessionErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}
