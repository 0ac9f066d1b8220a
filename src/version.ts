/** This package's version, sent to Clerk as `User-Agent: session-keeper/<version>` (a test keeps it equal to package.json). */
export const VERSION = '0.2.0'
