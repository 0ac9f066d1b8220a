import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type Browser } from 'playwright-core'
import { stopChild } from '../browser/drivers/xvfb.js'
import { requireProgram } from './browsers.js'

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
  '--password-store=basic',
  '--use-mock-keychain',
]

export interface RunningChromium {
  browser: Browser
  pid: number
  stop(): Promise<void>
}

/**
 * Debian's Chromium (CHROMIUM_PATH for another) in new headless mode, a profile of its own, driven
 * by playwright-core over CDP. Started by us rather than by `chromium.launch()`, and connected with
 * `noDefaults`: playwright's launch flags disable the back/forward cache, and its focus emulation
 * keeps every page `visible`; without them, background tabs are hidden as in a real browser.
 * Background-timer throttling stays as Chromium ships it.
 */
export async function startChromium(options: { windowSize?: { width: number; height: number } } = {}): Promise<RunningChromium> {
  const profile = mkdtempSync(join(tmpdir(), 'sk-chromium-'))
  const size = options.windowSize ?? { width: 1280, height: 900 }
  const child = spawn(
    requireProgram('chromium'),
    [
      ...CHROMIUM_ARGS,
      '--headless=new',
      '--remote-debugging-port=0',
      `--user-data-dir=${profile}`,
      `--window-size=${size.width},${size.height}`,
      'about:blank',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  const stop = async () => {
    await stopChild(child)
    // Chromium's network service may still write its state for a moment after the browser exits.
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        return rmSync(profile, { recursive: true, force: true })
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    }
  }
  try {
    const endpoint = await new Promise<string>((resolve, reject) => {
      let stderr = ''
      const timer = setTimeout(() => reject(new Error(`Chromium did not open its DevTools port: ${stderr.slice(-1000)}`)), 20_000)
      child.stderr!.on('data', (chunk) => {
        stderr = (stderr + chunk).slice(-5000)
        const match = /DevTools listening on (ws:\/\/\S+)/.exec(stderr)
        if (match) {
          clearTimeout(timer)
          resolve(match[1]!)
        }
      })
      child.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`Chromium exited (${code}) at start: ${stderr.slice(-1000)}`))
      })
    })
    child.stderr!.resume()
    const browser = await chromium.connectOverCDP(endpoint, { noDefaults: true })
    return {
      browser,
      pid: child.pid!,
      stop: async () => {
        await browser.close().catch(() => {})
        await stop()
      },
    }
  } catch (error) {
    await stop()
    throw error
  }
}
