import type { Clock } from './clock.js'

/** Lets callers wait, with a bound, for the next change of something: `notify()` wakes them all. */
export class Changes {
  readonly #waiters = new Set<() => void>()

  constructor(private readonly clock: Clock) {}

  /** Resolves on the next `notify()` or after `ms`, whichever comes first. */
  next(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.clock.clearTimeout(handle)
        this.#waiters.delete(done)
        resolve()
      }
      const handle = this.clock.setTimeout(done, ms)
      this.#waiters.add(done)
    })
  }

  /** Resolves once `done()` holds (checked after each change) or `ms` has passed. */
  async until(done: () => boolean, ms: number): Promise<void> {
    const deadline = this.clock.now() + ms
    while (!done() && this.clock.now() < deadline) await this.next(deadline - this.clock.now())
  }

  notify(): void {
    for (const waiter of [...this.#waiters]) waiter()
  }
}
