import { defineConfig } from 'vitest/config'
import { engineProjects } from './vitest.browser.config.js'

/**
 * Real-browser timings (`test/browser/timing/`): the same drivers as `vitest.browser.config.ts`,
 * but one browser at a time, one file at a time, after the other browser tests (`npm run
 * test:timing`). What these tests bound (how long `getToken()` waits at expiry) is the agent's and
 * the proxy's, not a machine's with three browsers on two cores.
 */
export default defineConfig({
  test: {
    maxWorkers: 1,
    fileParallelism: false,
    projects: engineProjects({ include: ['test/browser/timing/**/*.test.ts'], maxWorkers: 1, suffix: 'timing' }),
  },
})
