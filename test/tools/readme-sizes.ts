/**
 * The README's size table comes from the build: `--write` regenerates it from `size-limit --json`
 * (between the `<!-- sizes -->` markers); `--check` (in `npm test`) fails when it is stale.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'

const readme = new URL('../../README.md', import.meta.url)
const budgets = JSON.parse(readFileSync(new URL('../../.size-limit.json', import.meta.url), 'utf8')) as { name: string; limit: string }[]
let out: string
try {
  out = execFileSync('npx', ['size-limit', '--json'], { encoding: 'utf8' })
} catch (error) {
  out = (error as { stdout: string }).stdout
}
const sizes = JSON.parse(out) as { name: string; size: number }[]
const kb = (bytes: number) => (bytes >= 1000 ? `${(bytes / 1000).toFixed(2)} kB` : `${bytes} B`)
const table = [
  '| entry | size (min + gzip) | budget |',
  '|---|---|---|',
  ...sizes.map((s, i) => `| ${s.name.replace(/</g, '&lt;')} | ${kb(s.size)} | ${budgets[i]?.limit ?? '—'} |`),
].join('\n')
const text = readFileSync(readme, 'utf8')
const pattern = /<!-- sizes -->[\s\S]*?<!-- \/sizes -->/
if (!pattern.test(text)) throw new Error('README.md has no <!-- sizes --> … <!-- /sizes --> block')
const next = text.replace(pattern, `<!-- sizes -->\n${table}\n<!-- /sizes -->`)
if (process.argv.includes('--write')) {
  writeFileSync(readme, next)
  console.log('README size table updated')
} else if (next !== text) {
  console.error('The size table in README.md is stale: run `npm run size:readme`.')
  process.exit(1)
} else console.log('README size table matches the build')
