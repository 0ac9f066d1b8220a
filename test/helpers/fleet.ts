import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, request, type Server } from 'node:http'
import type { RefreshEvent, RefreshHandlerOptions } from '../../src/server/index.js'
import { close, listen } from './servers.js'

const script = new URL('./fleet-instance.ts', import.meta.url).pathname

export interface Instance {
  url: string
  child: ChildProcess
  events: RefreshEvent[]
  kill(): void
}

function startInstance(config: Record<string, unknown>): Promise<Instance> {
  // One process per instance (node with tsx's loader, not the tsx CLI, which forks a child).
  const child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const events: RefreshEvent[] = []
  return new Promise((resolve, reject) => {
    let buffer = ''
    const timer = setTimeout(() => reject(new Error('a proxy instance did not start')), 30_000)
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk
      let newline: number
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = JSON.parse(buffer.slice(0, newline)) as { port?: number; event?: RefreshEvent }
        buffer = buffer.slice(newline + 1)
        if (line.event) events.push(line.event)
        if (line.port) {
          clearTimeout(timer)
          resolve({ url: `http://127.0.0.1:${line.port}`, child, events, kill: () => child.kill('SIGKILL') })
        }
      }
    })
    child.on('exit', () => reject(new Error('a proxy instance exited')))
  })
}

/**
 * `count` proxy instances (separate processes) on one Redis, and a round-robin front on
 * 127.0.0.1 that hands each request to the next live instance, as a load balancer would.
 */
export async function startFleet(count: number, options: Partial<RefreshHandlerOptions> & { redisUrl: string; events?: boolean }) {
  const instances = await Promise.all(Array.from({ length: count }, () => startInstance(options)))
  let next = 0
  const front: Server = createServer((req, res) => {
    const live = instances.filter((i) => i.child.exitCode === null && i.child.signalCode === null)
    const target = live[next++ % live.length]!
    const upstream = request(`${target.url}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    upstream.on('error', () => res.destroy())
    res.on('close', () => upstream.destroy())
    req.pipe(upstream)
  })
  const url = await listen(front)
  return {
    url,
    instances,
    events: () => instances.flatMap((i) => i.events),
    async close() {
      for (const instance of instances) instance.kill()
      await close(front)
    },
  }
}

export type Fleet = Awaited<ReturnType<typeof startFleet>>
