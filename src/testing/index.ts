export { createClerkEmulator } from './createClerkEmulator.js'
export type {
  ClerkEmulator,
  ClerkEmulatorOptions,
  EmulatedSession,
  EmulatorFaults,
  EmulatorStats,
  InstanceType,
  RecordedRequest,
} from './createClerkEmulator.js'
export { REFRESH_ERROR_CODES } from './catalogue.js'
export type { RefreshErrorCode as ClerkRefreshErrorCode } from './catalogue.js'
export { publishableKeyFor } from './jwt.js'
