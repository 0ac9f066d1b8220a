/**
 * The load generator, run as a separate process by bench/server.ts so that it does not share an
 * event loop with the servers it measures. Sends `total` requests with `concurrency` in flight,
 * stops after `maxSeconds` whatever happens, and prints one JSON line of results.
 */
import { readFileSync } from 'node:fs'
import { Agent, request } from 'node:http'

interface Job {
  target: string
  requests: { path: string; headers: Record<string, string>; body: string }[]
  total: number
  concurrency: number
  maxSeconds: number
}

const job: Job = JSON.parse(readFileSync(process.argv[2]!, 'utf8'))
const agent = new Agent({ keepAlive: true, maxSockets: job.concurrency })
const latencies: number[] = []
const statuses: Record<number, number> = {}
let sent = 0
const deadline = performance.now() + job.maxSeconds * 1000

function once(index: number): Promise<void> {
  const spec = job.requests[index % job.requests.length]!
  const started = performance.now()
  return new Promise((resolve) => {
    const req = request(`${job.target}${spec.path}`, { method: 'POST', agent, headers: spec.headers }, (res) => {
      res.resume()
      res.on('end', () => {
        latencies.push(performance.now() - started)
        statuses[res.statusCode ?? 0] = (statuses[res.statusCode ?? 0] ?? 0) + 1
        resolve()
      })
    })
    req.on('error', () => {
      statuses[0] = (statuses[0] ?? 0) + 1
      resolve()
    })
    req.end(spec.body)
  })
}

async function worker(): Promise<void> {
  while (sent < job.total && performance.now() < deadline) await once(sent++)
}

const started = performance.now()
await Promise.all(Array.from({ length: job.concurrency }, worker))
const seconds = (performance.now() - started) / 1000
latencies.sort((a, b) => a - b)
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]
agent.destroy()
console.log(
  JSON.stringify({ completed: latencies.length, seconds, rps: latencies.length / seconds, p50: pct(0.5), p99: pct(0.99), statuses }),
)
