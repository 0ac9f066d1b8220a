import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'
import { sessionKeeperDemo } from './demo/server.js'

/** Library entry points; each new binding is one line here and one in package.json "exports". */
const entries = {
  index: 'src/index.ts',
  server: 'src/server/index.ts',
  testing: 'src/testing/index.ts',
  react: 'src/react/index.ts',
  vue: 'src/vue/index.ts',
}

export default defineConfig(({ mode }) => ({
  // `npm run demo`: index.html + demo/, with the emulator and the proxy as middleware.
  plugins: [sessionKeeperDemo()],
  resolve: { alias: { 'session-keeper': fileURLToPath(new URL('./src/index.ts', import.meta.url)) } },
  server: { port: 5173 },
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
