import type { Clock } from '../core/clock.js'

/** The subset of the Web Locks API (`navigator.locks`) the agent uses. */
export interface LockManagerLike {
  /** `callback` receives null when `ifAvailable` is set and the lock is taken. */
  request<T>(
    name: string,
    options: { signal?: AbortSignal; steal?: boolean; ifAvailable?: boolean },
    callback: (lock: unknown) => Promise<T>,
  ): Promise<T>
}

/** `navigator.locks` where the browser has it (secure contexts), else null. */
export function browserLocks(): LockManagerLike | null {
  const locks = typeof navigator === 'undefined' ? undefined : (navigator as { locks?: LockManagerLike | null }).locks
  return locks ?? null
}

/** For a lone tab without Web Locks or a channel: nobody to exclude, so the callback just runs. */
export const soloLocks: LockManagerLike = {
  request: (_name, _options, callback) => callback({}),
}

class LockWaitExpired extends Error {}

/** How the lock was obtained: at once, after another holder let go, or taken from it. */
export type LockGrant = 'free' | 'waited' | 'stolen'

/**
 * Runs `fn` holding the lock. The wait is bounded: after `waitMs` the holder is taken to be
 * frozen (a crashed or closed tab's lock is freed by the browser) and the lock is stolen,
 * unless `keepWaiting(waitStartedAt)` says another tab has made progress meanwhile.
 */
export async function withLock<T>(
  locks: LockManagerLike,
  name: string,
  waitMs: () => number,
  clock: Clock,
  fn: (grant: LockGrant) => Promise<T>,
  keepWaiting: (waitStartedAt: number) => boolean = () => false,
): Promise<T> {
  const free = await locks.request(name, { ifAvailable: true }, async (lock) => (lock ? { value: await fn('free') } : null))
  if (free) return free.value
  for (;;) {
    const startedAt = clock.now()
    const controller = new AbortController()
    let acquired = false
    const timer = clock.setTimeout(() => controller.abort(new LockWaitExpired()), waitMs())
    try {
      return await locks.request(name, { signal: controller.signal }, () => {
        acquired = true
        clock.clearTimeout(timer)
        return fn('waited')
      })
    } catch (error) {
      if (acquired || !(controller.signal.reason instanceof LockWaitExpired)) throw error
      if (!keepWaiting(startedAt)) return locks.request(name, { steal: true }, () => fn('stolen'))
    } finally {
      clock.clearTimeout(timer)
    }
  }
}
