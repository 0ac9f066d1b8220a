import { spawn, type ChildProcess } from 'node:child_process'
import { connect, createServer } from 'node:net'

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
    server.on('error', reject)
  })
}

async function waitForPort(port: number, up: boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy()
        resolve(true)
      })
      socket.on('error', () => resolve(false))
    })
    if (open === up) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`redis on port ${port} did not come ${up ? 'up' : 'down'} in time`)
}

/**
 * Debian's `redis-server` on a free 127.0.0.1 port, no persistence; stopped by its pid.
 * `restart()` stops it and starts it again on the same port (an empty Redis, as after a crash).
 */
export async function startRedis() {
  const port = await freePort()
  let child: ChildProcess | null = null
  async function start(): Promise<void> {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
    await waitForPort(port, true)
  }
  async function stop(): Promise<void> {
    if (!child || child.exitCode !== null) return
    const exited = new Promise((resolve) => child!.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
    await waitForPort(port, false)
  }
  await start()
  const restart = async () => {
    await stop()
    await start()
  }
  return { url: `redis://127.0.0.1:${port}`, port, stop, start, restart }
}

export type RedisServer = Awaited<ReturnType<typeof startRedis>>
