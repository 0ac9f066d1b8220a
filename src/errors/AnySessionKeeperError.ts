import type { NotStartedError } from './NotStartedError.js'
import type { RefreshError } from './RefreshError.js'
import type { TokenError } from './TokenError.js'
import type { TokenUnavailableError } from './TokenUnavailableError.js'

/** Every error the agent reports: `switch (error.code)` narrows to the class. */
export type AnySessionKeeperError = TokenError | RefreshError | TokenUnavailableError | NotStartedError
