/**
 * The package as a user gets it: `npm pack` (which builds through `prepare`, as an install from
 * git does), publint and are-the-types-wrong on the tarball, then a scratch app that installs the
 * tarball and imports every entry point from Node (ESM) and from TypeScript with
 * `moduleResolution` `bundler` and `node16`.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const root = resolve(import.meta.dirname, '../..')
const bin = (name: string) => join(root, 'node_modules/.bin', name)
let tarball: string
let app: string

beforeAll(async () => {
  const out = mkdtempSync(join(tmpdir(), 'sk-pack-'))
  await run('npm', ['pack', '--pack-destination', out, '--silent'], { cwd: root })
  tarball = join(out, readdirSync(out).find((f) => f.endsWith('.tgz'))!)
  app = mkdtempSync(join(tmpdir(), 'sk-app-'))
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'scratch-app', private: true, type: 'module' }))
  await run(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--ignore-scripts',
      tarball,
      'react@19.2.0',
      'react-dom@19.2.0',
      'vue@3.5.22',
      '@types/react@19.2.2',
      '@types/node@20.19.43',
    ],
    { cwd: app },
  )
})

describe('the packed package', () => {
  it('passes publint and are-the-types-wrong (ESM only)', async () => {
    const publint = await run(bin('publint'), ['--strict'], { cwd: root })
    expect(publint.stdout).not.toMatch(/error|warning/i)
    // The <script> build has no types of its own: it is a global, not an import.
    // Exits non-zero on any problem for ESM consumers (node16 from ESM, bundlers).
    const attw = await run(
      bin('attw'),
      [tarball, '--profile', 'esm-only', '--format', 'ascii', '--exclude-entrypoints', './dist/session-keeper.iife.js'],
      { cwd: root },
    )
    expect(attw.stdout).toMatch(/"session-keeper\/server"/)
  })

  it('ships dist with every entry, the <script> build and the types', () => {
    const pkg = join(app, 'node_modules/session-keeper')
    for (const file of [
      'dist/index.js',
      'dist/server.js',
      'dist/testing.js',
      'dist/react.js',
      'dist/vue.js',
      'dist/session-keeper.iife.js',
      'dist/types/index.d.ts',
      'LICENSE',
    ]) {
      expect(existsSync(join(pkg, file)), file).toBe(true)
    }
  })

  it('imports every entry point from Node', async () => {
    const script = `
      const agent = await import('session-keeper')
      const server = await import('session-keeper/server')
      const testing = await import('session-keeper/testing')
      const react = await import('session-keeper/react')
      const vue = await import('session-keeper/vue')
      console.log(JSON.stringify([typeof agent.createSessionKeeper, typeof server.createRefreshHandler, typeof server.createRedisStore,
        typeof testing.createClerkEmulator, typeof react.useSession, typeof vue.useSession]))`
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: app })
    expect(JSON.parse(stdout)).toEqual(['function', 'function', 'function', 'function', 'function', 'function'])
  })

  it.each(['bundler', 'node16'])('type-checks every entry with moduleResolution %s', async (resolution) => {
    writeFileSync(
      join(app, 'index.ts'),
      `
      import { createSessionKeeper, type AnySessionKeeperError, type SessionState } from 'session-keeper'
      import { createRefreshHandler, createRedisStore, type RefreshStore } from 'session-keeper/server'
      import { createClerkEmulator } from 'session-keeper/testing'
      import { useSession } from 'session-keeper/react'
      import { createSessionKeeperPlugin } from 'session-keeper/vue'
      const keeper = createSessionKeeper({ endpoint: '/api/session/refresh' })
      const state: SessionState = keeper.getState()
      const code: AnySessionKeeperError['code'] | undefined = state.error?.code
      export const used = [keeper, code, createRefreshHandler, createRedisStore, createClerkEmulator, useSession, createSessionKeeperPlugin]
      export type Store = RefreshStore
    `,
    )
    const module = resolution === 'bundler' ? 'esnext' : 'node16'
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          module,
          moduleResolution: resolution,
          target: 'es2022',
          lib: ['es2022', 'dom'],
          types: ['node'],
          skipLibCheck: false,
        },
        files: ['index.ts'],
      }),
    )
    const result = await run(bin('tsc'), ['-p', join(app, 'tsconfig.json')], { cwd: app }).catch((e) => e)
    expect(result.stdout ?? '').toBe('')
  })
})
