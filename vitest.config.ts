import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/server/**/*.test.ts', 'test/fleet/**/*.test.ts'],
    environment: 'happy-dom',
    testTimeout: 20_000,
  },
})
