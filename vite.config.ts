import { defineConfig } from 'vite'

/** Library entry points; each new binding is one line here and one in package.json "exports". */
const entries = {
  index: 'src/index.ts',
  server: 'src/server/index.ts',
  testing: 'src/testing/index.ts',
  react: 'src/react/index.ts',
  vue: 'src/vue/index.ts',
}

export default defineConfig(({ mode }) => ({
  build:
    mode === 'iife'
      ? {
          emptyOutDir: false,
          lib: { entry: 'src/script/iife.ts', name: 'SessionKeeper', formats: ['iife'], fileName: () => 'session-keeper.iife.js' },
        }
      : {
          lib: { entry: entries, formats: ['es'] },
          rollupOptions: { external: [/^react/, /^vue$/, /^node:/, 'ky', 'jwt-decode'] },
          minify: false,
        },
}))
