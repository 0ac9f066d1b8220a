/**
 * npx tsx test/tools/size-breakdown.ts [--top 25] — where the `<script>` build's bytes are: the
 * IIFE built again unminified (into a temporary directory), then, for each module in it, how much
 * smaller the whole bundle gets, minified (esbuild) and gzipped, without that module's code. A
 * module's figure is what it costs in this bundle, with gzip's sharing across modules counted,
 * so the figures do not add up to the whole. Prints ky's, jwt-decode's and our modules' sums.
 * `--fetch-for-ky`: also bundles the IIFE (esbuild, minified, gzipped) with ky and with
 * `fetch-for-ky.ts` in its place, the smallest client that does what the agent asks of ky.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { gzipSync } from 'node:zlib'
import { buildSync, transformSync } from 'esbuild'
import { build } from 'vite'

const { values } = parseArgs({ options: { top: { type: 'string', default: '25' }, 'fetch-for-ky': { type: 'boolean', default: false } } })
const root = new URL('../..', import.meta.url).pathname
const outDir = mkdtempSync(join(tmpdir(), 'sk-size-'))
try {
  await build({ root, mode: 'iife', logLevel: 'silent', build: { outDir, minify: false, emptyOutDir: true } })
  const bundle = readFileSync(join(outDir, 'session-keeper.iife.js'), 'utf8')
  // Rolldown marks where each module starts (`// src/core/clock.ts`, one tab in).
  const modules: { name: string; code: string }[] = []
  for (const line of bundle.split('\n')) {
    const start = /^\t\/\/ ((?:src|node_modules)\/\S+)$/.exec(line)
    if (start) modules.push({ name: start[1]!, code: '' })
    else if (modules.length > 0) modules.at(-1)!.code += `${line}\n`
  }
  if (modules.length === 0) throw new Error('no module markers found in the unminified bundle')
  const gzipped = (code: string) => gzipSync(transformSync(code, { minify: true, loader: 'js' }).code, { level: 9 }).length
  const whole = gzipped(bundle)
  const rows = modules
    .map(({ name, code }) => ({ name, bytes: whole - gzipped(bundle.replace(code, '')) }))
    .sort((a, b) => b.bytes - a.bytes)
  const sum = (prefix: string) => rows.filter((r) => r.name.startsWith(prefix)).reduce((total, r) => total + r.bytes, 0)
  console.log(`whole bundle, esbuild-minified and gzipped: ${whole} B (size-limit measures its own minification)`)
  console.log(
    `sums of the modules' costs: ours ${sum('src/')} B, ky ${sum('node_modules/ky/')} B, jwt-decode ${sum('node_modules/jwt-decode/')} B`,
  )
  console.log('\n| module | bytes |\n|---|---|')
  for (const row of rows.slice(0, Number(values.top))) console.log(`| ${row.name} | ${row.bytes} |`)
  if (values['fetch-for-ky']) {
    const bundled = (alias: Record<string, string>) => {
      const result = buildSync({
        entryPoints: [join(root, 'src/script/iife.ts')],
        bundle: true,
        minify: true,
        format: 'iife',
        target: 'es2022',
        write: false,
        alias,
      })
      return gzipSync(result.outputFiles[0]!.contents, { level: 9 }).length
    }
    const withKy = bundled({})
    const withFetch = bundled({ ky: join(root, 'test/tools/fetch-for-ky.ts') })
    console.log(
      `\nesbuild bundle, minified + gzipped: with ky ${withKy} B; with fetch-for-ky.ts in its place ${withFetch} B (${withKy - withFetch} B less)`,
    )
  }
} finally {
  rmSync(outDir, { recursive: true, force: true })
}
