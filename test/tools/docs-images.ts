/**
 * npm run docs:images — remakes the README's pictures from real runs:
 * - docs/timeline.png: the demo (`npm run demo`'s server, in-process) in real Chromium, three
 *   tabs (one in front), signed in, 10 s tokens, after a minute: its timeline;
 * - docs/*.svg: the benchmark's charts (test/bench/charts.ts), from test/bench/results/browser.json
 *   when `npm run bench` has written it, and from the peers' measurements (test/bench/peers.json).
 * Bounded: about 75 s.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { chromium } from 'playwright-core'
import { createServer } from 'vite'
import { CHROMIUM_ARGS } from '../helpers/chromium.js'

const RUN_MS = Number(process.env.DOCS_RUN_MS ?? 60_000)
const docs = new URL('../../docs/', import.meta.url)
mkdirSync(docs, { recursive: true })

const vite = await createServer({
  configFile: 'vite.config.ts',
  server: { port: 0, host: '127.0.0.1', watch: null, hmr: false },
  logLevel: 'silent',
})
await vite.listen()
const url = vite.resolvedUrls!.local[0]!
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: CHROMIUM_ARGS })
try {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, deviceScaleFactor: 1 })
  const errors: string[] = []
  const front = await context.newPage()
  front.on('pageerror', (error) => errors.push(String(error)))
  await front.goto(url)
  await front.evaluate(() =>
    fetch('/demo-api/lifetime', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"seconds":10}' }),
  )
  await front.click('#sign-in')
  await front.waitForSelector('#status-pill.active', { timeout: 15_000 })
  for (let i = 0; i < 2; i++) await (await context.newPage()).goto(url)
  await front.bringToFront()
  await new Promise((resolve) => setTimeout(resolve, RUN_MS))
  const timeline = await front.$('#timeline')
  if (!timeline) throw new Error('docs:images: the demo has no #timeline')
  const lanes = await front.evaluate(() => document.querySelectorAll('#timeline .lane-label').length)
  if (lanes !== 3) throw new Error(`docs:images: expected three lanes on the timeline, found ${lanes}`)
  if (errors.length) throw new Error(`docs:images: page errors: ${errors.join('; ')}`)
  await timeline.screenshot({ path: new URL('timeline.png', docs).pathname })
  console.log(`wrote ${new URL('timeline.png', docs).pathname} (${RUN_MS / 1000} s, three tabs)`)
} finally {
  await browser.close()
  await vite.close()
}
execFileSync('npx', ['tsx', 'test/bench/charts.ts', '--docs'], { stdio: 'inherit' })
