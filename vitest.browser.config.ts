import { defineConfig } from 'vitest/config'
import { selectedEngines } from './test/browser/drivers/index.js'

/**
 * Real-browser tests: node drives Debian's Chromium (playwright-core over CDP), Firefox ESR
 * (puppeteer-core over WebDriver BiDi) and WebKitGTK's MiniBrowser (WebKitWebDriver, under an Xvfb
 * the WebKit driver starts itself). Every scenario is written once and runs in each engine: one
 * project per engine, three test files at a time (three browsers; the tests mostly wait on token
 * lifetimes). `ENGINES=firefox,webkit` narrows the run; `BROWSERS_IN_TURN=1` runs one file at a
 * time. The timings (`test/browser/timing/`) are not here: `npm run test:timing` runs them alone.
 */
const workers = process.env.BROWSERS_IN_TURN === '1' ? 1 : 3

export default defineConfig({
  test: {
    // Vitest's default is one fewer than the cores: one, on 2 cores.
    maxWorkers: workers,
    projects: selectedEngines().map((name) => ({
      extends: true,
      test: {
        name,
        include: ['test/browser/**/*.test.ts'],
        exclude: ['test/browser/timing/**'], // timings run alone: vitest.timing.config.ts
        environment: 'node',
        env: { ENGINES: name },
        testTimeout: 120_000,
        hookTimeout: 60_000,
        maxWorkers: workers,
      },
    })),
  },
})
