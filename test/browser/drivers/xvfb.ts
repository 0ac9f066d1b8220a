import { spawn } from 'node:child_process'
import { requireProgram } from '../../helpers/browsers.js'

export interface XServer {
  /** `:N`, for DISPLAY. */
  readonly display: string
  readonly pid: number
  stop(): Promise<void>
}

/**
 * Starts Xvfb on a display it picks itself (`-displayfd` writes the number once the server is
 * ready), for MiniBrowser, which has no headless mode. Stopped by its pid.
 */
export async function startXvfb(timeoutMs = 10_000): Promise<XServer> {
  const child = spawn(requireProgram('xvfb'), ['-displayfd', '1', '-screen', '0', '1920x2200x24', '-nolisten', 'tcp'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-2000)
  })
  const display = await new Promise<string>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`Xvfb did not report a display within ${timeoutMs} ms: ${stderr}`)), timeoutMs)
    child.stdout.on('data', (chunk) => {
      out += chunk
      const match = /^(\d+)\n/.exec(out)
      if (match) {
        clearTimeout(timer)
        resolve(`:${match[1]}`)
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`Xvfb exited (${code}) before reporting a display: ${stderr}`))
    })
  })
  const pid = child.pid!
  return {
    display,
    pid,
    stop: () => stopChild(child),
  }
}

/** SIGTERM, then SIGKILL after a grace period; resolves once the process is gone. */
export function stopChild(child: import('node:child_process').ChildProcess, graceMs = 3_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill('SIGTERM')
  })
}
