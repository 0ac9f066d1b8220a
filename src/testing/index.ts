export { createClerkEmulator } from './createClerkEmulator.js'
export type {
  ClerkEmulator, ClerkEmulatorOptions, EmulatedSession, EmulatorFaults, EmulatorStats,
} from './createClerkEmulator.js'
