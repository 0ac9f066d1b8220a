/**
 * First step of `npm test`: every program the tests start must be there, else stop at once with
 * what is missing and how to get it, instead of failing minutes later in the middle of a run.
 * Checks Chromium, Firefox, WebKitWebDriver with MiniBrowser, Xvfb and redis-server, where the
 * tests look for them (Debian's paths, or CHROMIUM_PATH, FIREFOX_PATH, WEBKIT_DRIVER_PATH,
 * MINIBROWSER_PATH, XVFB_PATH; redis-server on PATH).
 */
import { findProgram, lookedFor, PROGRAMS, type Program } from '../helpers/browsers.js'

const INSTALL = 'sudo apt-get install -y chromium firefox-esr webkit2gtk-driver xvfb redis-server'

const missing: Program[] = (Object.values(PROGRAMS) as Program[]).filter((program) => findProgram(program) === null)

if (missing.length === 0) {
  console.log(
    `preflight: ${Object.values(PROGRAMS)
      .map((p) => p.name.replace(/ \(.*/, ''))
      .join(', ')} found`,
  )
  process.exit(0)
}

const lines = [
  `preflight: ${missing.length} program(s) the tests need are missing:`,
  ...missing.map((p) => `  - ${p.name}: ${lookedFor(p)}; Debian package ${p.debian}`),
  '',
  'Install them all (Debian 12 / Ubuntu):',
  `  ${INSTALL}`,
  '',
  'or point at a copy elsewhere (redis-server is looked up on PATH):',
  ...(Object.values(PROGRAMS) as Program[])
    .filter((p): p is Program & { env: string } => p.env !== undefined)
    .map((p) => `  ${p.env}=/path/to/${p.fallback.split('/').pop()}`),
]
console.error(lines.join('\n'))
process.exit(1)
