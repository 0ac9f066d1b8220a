/**
 * npx tsx test/bench/rate-limit.ts [--engine chromium] [--tabs 2,10] — requests that reach a rate
 * limit while it lasts, with the built `<script>` bundle (SESSION_KEEPER_IIFE=<path> for another
 * build, e.g. an older one to compare), 10 s tokens:
 * - "429 3 s": from the next refresh on, the proxy's own 429 (JSON) with `Retry-After: 3`, for 3 s;
 * - "edge 429 8 s": an edge's 429 with an HTML body and `Retry-After: 8`, which outlasts the token.
 * Counts the requests inside each window (the first, refused one included) and those sent before
 * a `Retry-After` had passed. Bounded: about 20 s per case.
 */
import { parseArgs } from 'node:util'
import { IIFE_PATH } from '../helpers/app.js'
import { type EngineName, launchEngine } from '../browser/drivers/index.js'
import { closeAll, openTabs } from '../browser/harness.js'
import { sleep } from '../helpers/time.js'

const { values } = parseArgs({ options: { engine: { type: 'string', default: 'chromium' }, tabs: { type: 'string', default: '2,10' } } })
const CASES = [
  { name: '429 3 s', retryAfterSeconds: 3, forMs: 3_000, body: 'json' as const },
  { name: 'edge 429 8 s', retryAfterSeconds: 8, forMs: 8_000, body: 'html' as const },
]

const engine = await launchEngine(values.engine as EngineName)
const rows: string[] = []
try {
  for (const count of values.tabs!.split(',').map(Number)) {
    for (const c of CASES) {
      const { app, session } = await openTabs(engine, count, { lifetimeSeconds: 10 })
      try {
        app.requests.length = 0
        app.rateLimit({ retryAfterSeconds: c.retryAfterSeconds, forMs: c.forMs, body: c.body })
        for (const deadline = Date.now() + 10_000; !app.requests.some((r) => r.by === 'edge') && Date.now() < deadline; ) await sleep(20)
        const t0 = app.requests.find((r) => r.by === 'edge')?.at ?? Date.now()
        await sleep(c.forMs + 500)
        const inside = app.requests.filter((r) => r.at >= t0 && r.at < t0 + c.forMs)
        const early = inside.filter((r) =>
          inside.some(
            (refused) =>
              refused.by === 'edge' && r !== refused && r.at >= refused.at && r.at < refused.at + c.retryAfterSeconds * 1000 - 25,
          ),
        )
        rows.push(`| ${engine.name} | ${count} | ${c.name} | ${inside.length} | ${early.length} |`)
        console.log(rows.at(-1))
      } finally {
        await closeAll(session, app)
      }
    }
  }
} finally {
  await engine.close()
}
console.log(
  `\nbundle: ${IIFE_PATH}\n\n| engine | tabs | case | requests in the window | before Retry-After |\n|---|---:|---|---:|---:|\n${rows.join('\n')}`,
)
