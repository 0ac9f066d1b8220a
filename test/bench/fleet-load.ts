/**
 * The load generator for `bench:fleet`, in a process of its own: every simulated user refreshes
 * its token once per cycle at its own phase, like an agent would; a fraction of the refreshes lose
 * their answer (the request is cut after the proxy has it) and are retried at once, landing on
 * another instance. Bounded: it stops after `cycles` cycles and a deadline. Prints one JSON line.
 */
import { readFileSync } from 'node:fs'
import { Agent, request } from 'node:http'

interface Job {
  front: string
  origin: string
  cookieSuffix: string
  sessions: { sessionId: string; sessionToken: string; refreshToken: string }[]
  lifetimeS: number
  cycles: number
  dropFraction: number
}
const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Job
const agent = new Agent({ keepAlive: true, maxSockets: 256 })
const latencies: number[] = []
const statuses: Record<number, number> = {}
let dropped = 0
let retriedSame = 0

function post(s: Job['sessions'][number], token: string, cutAfterMs?: number): Promise<{ status: number; jwt?: string; ms: number }> {
  const started = performance.now()
  return new Promise((resolve) => {
    const req = request(
      `${job.front}/api/session/refresh`,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', origin: job.origin, cookie: `__refresh_${job.cookieSuffix}=${s.refreshToken}` },
      },
      (res) => {
        let body = ''
        res.on('data', (c) => (body += c))
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            jwt: res.statusCode === 200 ? JSON.parse(body).jwt : undefined,
            ms: performance.now() - started,
          }),
        )
      },
    )
    req.on('error', () => resolve({ status: 0, ms: performance.now() - started }))
    if (cutAfterMs !== undefined) setTimeout(() => req.destroy(), cutAfterMs)
    req.end(JSON.stringify({ session_id: s.sessionId, expired_token: token }))
  })
}

async function user(s: Job['sessions'][number]): Promise<void> {
  let token = s.sessionToken
  const cycleMs = job.lifetimeS * 1000
  await new Promise((resolve) => setTimeout(resolve, Math.random() * cycleMs))
  for (let cycle = 0; cycle < job.cycles; cycle++) {
    const at = performance.now()
    let answer: Awaited<ReturnType<typeof post>>
    if (Math.random() < job.dropFraction) {
      dropped++
      await post(s, token, 50) // the answer is lost on the way back
      answer = await post(s, token) // an agent retries at once
      if (answer.status === 200) retriedSame++
    } else answer = await post(s, token)
    statuses[answer.status] = (statuses[answer.status] ?? 0) + 1
    latencies.push(answer.ms)
    if (answer.jwt) token = answer.jwt
    const wait = cycleMs - (performance.now() - at)
    if (cycle < job.cycles - 1 && wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
  }
}

const started = performance.now()
const deadline = setTimeout(() => process.exit(2), (job.cycles + 2) * job.lifetimeS * 1000 + 60_000)
await Promise.all(job.sessions.map(user))
clearTimeout(deadline)
latencies.sort((a, b) => a - b)
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN
agent.destroy()
console.log(
  JSON.stringify({
    seconds: (performance.now() - started) / 1000,
    refreshes: latencies.length,
    p50: pct(0.5),
    p99: pct(0.99),
    statuses,
    dropped,
    retriedSame,
  }),
)
