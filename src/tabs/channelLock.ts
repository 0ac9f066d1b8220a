import { sleep, type Clock } from '../core/clock.js'
import type { LockManagerLike } from './locks.js'
import type { TabChannel } from './channel.js'
import type { LockMessage } from './protocol.js'

/**
 * A lock over the tab channel for browsers without Web Locks. A tab claims, waits
 * `claimWindowMs` for a competing claim or a holder's answer, and the lowest ticket wins.
 * A holder that dies never releases: waiters rely on the caller's signal (withLock bounds it)
 * and then steal, which needs no agreement.
 */
export class ChannelLock implements LockManagerLike {
  /** Our ticket per lock name while we claim or hold it. */
  readonly #held = new Map<string, number>()
  /** Names whose claim window passed: we hold them. */
  readonly #holding = new Set<string>()
  readonly #others = new Map<string, { from: string; ticket: number }>()
  readonly #wakers = new Set<() => void>()

  constructor(
    private readonly channel: TabChannel,
    private readonly clock: Clock,
    private readonly random: () => number,
    private readonly claimWindowMs = 40,
  ) {
    channel.on((message) => message.type === 'lock' && this.#receive(message))
  }

  async request<T>(
    name: string,
    options: { signal?: AbortSignal; steal?: boolean; ifAvailable?: boolean },
    callback: (lock: unknown) => Promise<T>,
  ): Promise<T> {
    for (;;) {
      options.signal?.throwIfAborted()
      if (options.ifAvailable && (this.#others.has(name) || this.#held.has(name))) return callback(null)
      if (!options.steal && (this.#others.has(name) || this.#held.has(name))) {
        await this.#changed(options.signal)
        continue
      }
      const ticket = this.random()
      this.#others.delete(name)
      this.#held.set(name, ticket)
      this.channel.post({ type: 'lock', op: 'claim', name, ticket })
      await sleep(this.clock, this.claimWindowMs, options.signal).catch((error) => {
        this.#held.delete(name)
        throw error
      })
      if (this.#held.get(name) !== ticket && !options.steal) {
        if (options.ifAvailable) return callback(null)
        continue // lost to a lower ticket or a holder
      }
      this.#held.set(name, ticket)
      this.#holding.add(name)
      try {
        return await callback({ name })
      } finally {
        this.#held.delete(name)
        this.#holding.delete(name)
        this.channel.post({ type: 'lock', op: 'release', name, ticket })
        this.#wake()
      }
    }
  }

  #receive(message: LockMessage): void {
    const { name, op, from, ticket } = message
    const mine = this.#held.get(name)
    if (op === 'release') {
      if (this.#others.get(name)?.from === from) this.#others.delete(name)
    } else if (mine !== undefined && op === 'claim' && this.#holding.has(name)) {
      this.channel.post({ type: 'lock', op: 'held', name, ticket: mine })
    } else if (mine !== undefined && op === 'claim' && (ticket > mine || (ticket === mine && from > this.channel.tabId))) {
      // A later claim loses to ours once it sees it; nothing to do.
    } else {
      if (mine !== undefined && !this.#holding.has(name)) this.#held.delete(name)
      this.#others.set(name, { from, ticket })
    }
    this.#wake()
  }

  #changed(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = () => {
        this.#wakers.delete(done)
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }
      const onAbort = () => {
        this.#wakers.delete(done)
        reject(signal!.reason)
      }
      this.#wakers.add(done)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  #wake(): void {
    for (const waker of [...this.#wakers]) waker()
  }
}
