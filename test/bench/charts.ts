/**
 * The benchmark's charts, as SVG: written next to `results/browser.json` by `npm run bench`, and
 * into docs/ (what the README shows) by `npm run docs:images`. Run alone:
 * `npx tsx test/bench/charts.ts [--docs]`.
 *
 * - refresh requests at the server against the number of tabs, beside what the peers measured
 *   in the same conditions (test/bench/peers.json, with its source line);
 * - the `getToken()` wait around expiry, under both of Clerk's possible policies, per engine;
 * - propagation of a new token to every tab against a raw BroadcastChannel fan-out, per engine.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { barChart } from './svg.js'

interface Scenario {
  policy: 'accept' | 'refuse'
  tabs: number
  generations: number
  refreshes: number
  getTokenWaitP50Ms: number
  getTokenWaitP99Ms: number
  waitedCalls: number
  propagationP50Ms: number
  rawFanoutP50Ms: number
}
interface BrowserResults {
  date: string
  lifetimeSeconds: number
  engines: { engine: string; version: string; scenarios: Scenario[] }[]
}
interface Peers {
  source: string
  conditions: { tokenLifetimeSeconds: number; durationSeconds: number }
  tabs: number[]
  requests: Record<string, number[]>
}

const here = (path: string) => new URL(path, import.meta.url)
const finite = (v: number | undefined) => (v !== undefined && Number.isFinite(v) ? v : null)

/** Every chart the results allow, by file name. */
export function charts(peers: Peers, results: BrowserResults | null): Record<string, string> {
  const out: Record<string, string> = {}
  const { tokenLifetimeSeconds: lifetime, durationSeconds: duration } = peers.conditions
  out['requests-per-tabs.svg'] = barChart({
    title: `Refresh requests at the server in ${duration / 60} minutes (${lifetime} s tokens), by open tabs`,
    groups: peers.tabs.map((n) => `${n} tab${n === 1 ? '' : 's'}`),
    series: Object.entries(peers.requests).map(([name, values]) => ({
      name,
      values,
      ...(name === 'session-keeper' ? { color: '#2f6fde' } : {}),
    })),
    yLabel: 'requests (log scale)',
    log: true,
    note: `${peers.source} Data: test/bench/peers.json.`,
  })
  if (!results) return out
  const engines = results.engines
  const cell = (engine: (typeof engines)[number], policy: Scenario['policy'], pick: (s: Scenario) => number) => {
    const runs = engine.scenarios.filter((s) => s.policy === policy)
    const widest = runs.sort((a, b) => b.tabs - a.tabs)[0]
    return widest ? finite(pick(widest)) : null
  }
  const groups = engines.map((e) => `${e.engine} ${e.version.match(/\d+(\.\d+)*/)?.[0] ?? ''}`.trim())
  // No call waited: a wait of 0, not a missing value.
  const waitOf = (s: Scenario, pick: (s: Scenario) => number) => (s.waitedCalls === 0 ? 0 : pick(s))
  out['get-token-wait.svg'] = barChart({
    title: `getToken() calls that waited, around expiry (${results.lifetimeSeconds} s tokens, most tabs run)`,
    groups,
    series: (
      [
        ['accept', 'accepts early', '#9dbcf2', '#2f6fde'],
        ['refuse', 'refuses early', '#f0b49a', '#d65a28'],
      ] as const
    ).flatMap(([policy, label, light, dark]) => [
      { name: `${label}: p50`, values: engines.map((e) => cell(e, policy, (s) => waitOf(s, (x) => x.getTokenWaitP50Ms))), color: light },
      { name: `${label}: p99`, values: engines.map((e) => cell(e, policy, (s) => waitOf(s, (x) => x.getTokenWaitP99Ms))), color: dark },
    ]),
    yLabel: 'ms',
    note: `npm run bench, ${results.date.slice(0, 10)}; "accepts"/"refuses": whether Clerk refreshes a token before it expires`,
  })
  out['propagation.svg'] = barChart({
    title: 'A new token in every tab vs a raw BroadcastChannel fan-out (p50, most tabs)',
    groups,
    series: [
      { name: 'raw BroadcastChannel', values: engines.map((e) => cell(e, 'accept', (s) => s.rawFanoutP50Ms)), color: '#9ca3af' },
      { name: 'session-keeper', values: engines.map((e) => cell(e, 'accept', (s) => s.propagationP50Ms)), color: '#1f9d6a' },
    ],
    yLabel: 'ms',
    note: `npm run bench, ${results.date.slice(0, 10)}; the same pages, the same run`,
  })
  // Requests per token lifetime against tabs, measured here, per engine and policy.
  const tabCounts = [...new Set(engines.flatMap((e) => e.scenarios.map((s) => s.tabs)))].sort((a, b) => a - b)
  out['requests-per-lifetime.svg'] = barChart({
    title: 'Refresh requests per token lifetime, by open tabs (npm run bench)',
    groups: tabCounts.map((n) => `${n} tab${n === 1 ? '' : 's'}`),
    series: engines.flatMap((e) =>
      (['accept', 'refuse'] as const).map((policy) => ({
        name: `${e.engine}, ${policy}s early`,
        values: tabCounts.map((n) => {
          const s = e.scenarios.find((x) => x.tabs === n && x.policy === policy)
          return s ? s.refreshes / Math.max(1, s.generations) : null
        }),
      })),
    ),
    yLabel: 'requests per lifetime',
    note: `npm run bench, ${results.date.slice(0, 10)}; 1.00 is one request per token, whatever the number of tabs`,
    format: (v) => v.toFixed(2),
  })
  return out
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const peers = JSON.parse(readFileSync(here('./peers.json'), 'utf8')) as Peers
  const resultsFile = here('./results/browser.json')
  const results = existsSync(resultsFile) ? (JSON.parse(readFileSync(resultsFile, 'utf8')) as BrowserResults) : null
  const target = process.argv.includes('--docs') ? here('../../docs/') : here('./results/')
  mkdirSync(target, { recursive: true })
  for (const [name, svg] of Object.entries(charts(peers, results))) {
    writeFileSync(new URL(name, target), svg)
    console.log(`wrote ${new URL(name, target).pathname}`)
  }
}
