import type { Clock } from './clock.js'

/** The longest single setTimeout browsers honour (2^31 − 1 ms); longer waits are re-armed. */
const MAX_TIMEOUT_MS = 2_147_483_647

/**
 * One timer aimed at a wall-clock time. When it fires it re-reads the clock instead of trusting
 * the timeout: early (clock moved back) re-arms, late (sleep, throttling) reports by how much.
 * There is at most one pending timeout, and nothing polls.
 */
export class WakeTimer {
  #handle: unknown = undefined
  #target: number | null = null

  constructor(
    private readonly clock: Clock,
    private readonly onFire: (lateByMs: number) => void,
  ) {}

  /** Fire at `targetMs` (local clock). Replaces any earlier target. */
  at(targetMs: number): void {
    if (this.#target === targetMs && this.#handle !== undefined) return
    this.cancel()
    this.#target = targetMs
    this.#arm()
  }

  get target(): number | null {
    return this.#target
  }

  cancel(): void {
    if (this.#handle !== undefined) this.clock.clearTimeout(this.#handle)
    this.#handle = undefined
    this.#target = null
  }

  #arm(): void {
    const delay = Math.min(MAX_TIMEOUT_MS, Math.max(0, this.#target! - this.clock.now()))
    this.#handle = this.clock.setTimeout(() => this.#fired(), delay)
  }

  #fired(): void {
    this.#handle = undefined
    const target = this.#target
    if (target === null) return
    const now = this.clock.now()
    if (now < target) return this.#arm()
    this.#target = null
    this.onFire(now - target)
  }
}
