import { defineConfig } from 'vitest/config'
import { selectedEngines } from './test/browser/drivers/index.js'

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
    projects: selectedEngines().map((name) => ({
      extends: true,
      test: {
        name: `${name} timing`,
        include: ['test/browser/timing/**/*.test.ts'],
        environment: 'node',
        env: { ENGINES: name },
        testTimeout: 120_000,
        hookTimeout: 60_000,
        maxWorkers: 1,
      },
    })),
  },
})
