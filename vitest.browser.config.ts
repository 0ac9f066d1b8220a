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

/** One Vitest project per selected engine, `maxWorkers` files at a time (the drivers read `ENGINES`). */
export function engineProjects(options: { include: string[]; exclude?: string[]; maxWorkers: number; suffix?: string }) {
  return selectedEngines().map((name) => ({
    extends: true as const,
    test: {
      name: options.suffix ? `${name} ${options.suffix}` : name,
      include: options.include,
      exclude: options.exclude ?? [],
      environment: 'node' as const,
      env: { ENGINES: name },
      testTimeout: 120_000,
      hookTimeout: 60_000,
      maxWorkers: options.maxWorkers,
    },
  }))
}

export default defineConfig({
  test: {
    // Vitest's default is one fewer than the cores: one, on 2 cores.
    maxWorkers: workers,
    // Timings run alone: vitest.timing.config.ts.
    projects: engineProjects({ include: ['test/browser/**/*.test.ts'], exclude: ['test/browser/timing/**'], maxWorkers: workers }),
  },
})
