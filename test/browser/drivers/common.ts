import { createServer } from 'node:net'
import type { Tab } from './types.js'

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * `fn(arg)` as one expression of page script. Functions reach every engine as source text; the
 * `__name` stub absorbs the helper esbuild (tsx, vitest) inserts around named inner functions.
 */
export function pageExpression(fn: (arg: never) => unknown, arg: unknown): string {
  return `(() => { var __name = (f) => f; return (${fn.toString()})(${JSON.stringify(arg)}) })()`
}

/** Polls `evaluate()` every `intervalMs` until it is truthy; throws after `timeoutMs`. */
export async function pollUntil(evaluate: () => Promise<unknown>, timeoutMs: number, what: string, intervalMs = 40): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      if (await evaluate()) return
    } catch (error) {
      last = error // a page between two documents (a reload, history.back()) answers nothing: retry
    }
    if (Date.now() >= deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last).slice(0, 300)})` : ''}`)
    }
    await sleep(intervalMs)
  }
}

/**
 * `history.back()` from the page itself, a moment after the script answers (its answer comes
 * first): `Tab.back()` where the driver fails a script caught in the page being left at once.
 */
export async function backByScript(tab: Pick<Tab, 'evaluate'>): Promise<void> {
  await tab.evaluate(() => {
    setTimeout(() => history.back(), 0)
  })
}

/** A TCP port free on 127.0.0.1 a moment ago (for a driver that must be told its port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

/** Runs tasks one at a time, in order: a WebDriver Classic session has one "current window". */
export class Serial {
  #tail: Promise<unknown> = Promise.resolve()

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task)
    this.#tail = result.catch(() => {})
    return result
  }
}
