import { defineConfig } from 'vitest/config'

/** The packed package, as a user installs it: publint, are-the-types-wrong, and a scratch app. */
export default defineConfig({
  test: {
    include: ['test/package/**/*.test.ts'],
    environment: 'node',
    testTimeout: 240_000,
    hookTimeout: 240_000,
  },
})
