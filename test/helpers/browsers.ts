import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'

/**
 * Where the real-browser tests find each program: Debian's packages by default, an environment
 * variable to use one elsewhere. Read by the drivers (test/browser/drivers) and by the preflight
 * (test/tools/preflight.ts), so both agree on what "installed" means.
 */
export interface Program {
  /** What the preflight calls it. */
  readonly name: string
  /** The environment variable that points at another copy, if any. */
  readonly env?: string
  /** The Debian package that installs it. */
  readonly debian: string
  /** Absolute path, or a command looked up on PATH. */
  readonly fallback: string
}

export const PROGRAMS = {
  chromium: { name: 'Chromium', env: 'CHROMIUM_PATH', debian: 'chromium', fallback: '/usr/bin/chromium' },
  firefox: { name: 'Firefox', env: 'FIREFOX_PATH', debian: 'firefox-esr', fallback: '/usr/bin/firefox-esr' },
  webkitDriver: { name: 'WebKitWebDriver', env: 'WEBKIT_DRIVER_PATH', debian: 'webkit2gtk-driver', fallback: '/usr/bin/WebKitWebDriver' },
  miniBrowser: {
    name: 'MiniBrowser (WebKitGTK)',
    env: 'MINIBROWSER_PATH',
    debian: 'webkit2gtk-driver',
    fallback: '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser',
  },
  xvfb: { name: 'Xvfb (an X server for MiniBrowser)', env: 'XVFB_PATH', debian: 'xvfb', fallback: 'Xvfb' },
  // Started by test/helpers/redis.ts from PATH.
  redis: { name: 'redis-server', debian: 'redis-server', fallback: 'redis-server' },
} as const satisfies Record<string, Program>

export type ProgramKey = keyof typeof PROGRAMS

/** The path configured for `program` (its env var, else the Debian default), not checked. */
export function configuredPath(program: Program, env: NodeJS.ProcessEnv = process.env): string {
  return (program.env && env[program.env]) || program.fallback
}

/** Where `program` was looked for, in words. */
export function lookedFor(program: Program, env: NodeJS.ProcessEnv = process.env): string {
  const path = configuredPath(program, env)
  const where = path.includes('/') ? `not at ${path}` : `no ${path} on PATH`
  return program.env ? `${where} (${program.env}${env[program.env] ? ` is set` : ' unset'})` : where
}

/** The executable for `program`, or null when there is none where it is looked for. */
export function findProgram(program: Program, env: NodeJS.ProcessEnv = process.env): string | null {
  const wanted = configuredPath(program, env)
  const candidates = wanted.includes('/') ? [wanted] : (env.PATH ?? '').split(delimiter).map((dir) => join(dir, wanted))
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {}
  }
  return null
}

/** Like `findProgram`, but throws the preflight's message when it is missing. */
export function requireProgram(key: ProgramKey): string {
  const program: Program = PROGRAMS[key]
  const found = findProgram(program)
  if (found) return found
  throw new Error(
    `${program.name}: ${lookedFor(program)}. Install it with sudo apt-get install -y ${program.debian}` +
      (program.env ? `, or set ${program.env} to its path` : '') +
      ' (npm run preflight checks everything the tests need)',
  )
}
