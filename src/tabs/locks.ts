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
 * unless `keepWaiting(waitStartedAt)` says another tab has made progress meanwhile. `signal`
 * ends the wait, or lets go of the lock at once (`fn` is left to notice it), with its reason.
 */
export async function withLock<T>(
  locks: LockManagerLike,
  name: string,
  waitMs: () => number,
  clock: Clock,
  fn: (grant: LockGrant) => Promise<T>,
  keepWaiting: (waitStartedAt: number) => boolean = () => false,
  signal?: AbortSignal,
): Promise<T> {
  const holding = (grant: LockGrant) => untilAborted(fn(grant), signal)
  // The Web Locks API takes no signal with `ifAvailable` or `steal` (NotSupportedError).
  signal?.throwIfAborted()
  const free = await locks.request(name, { ifAvailable: true }, async (lock) => (lock ? { value: await holding('free') } : null))
  if (free) return free.value
  for (;;) {
    signal?.throwIfAborted()
    const startedAt = clock.now()
    const controller = new AbortController()
    const onAbort = () => controller.abort(signal!.reason)
    signal?.addEventListener('abort', onAbort, { once: true })
    let acquired = false
    const timer = clock.setTimeout(() => controller.abort(new LockWaitExpired()), waitMs())
    try {
      return await locks.request(name, { signal: controller.signal }, () => {
        acquired = true
        clock.clearTimeout(timer)
        return holding('waited')
      })
    } catch (error) {
      if (acquired || !(controller.signal.reason instanceof LockWaitExpired)) throw error
      if (!keepWaiting(startedAt)) {
        signal?.throwIfAborted()
        return locks.request(name, { steal: true }, () => holding('stolen'))
      }
    } finally {
      clock.clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
    }
  }
}

/** `work`'s outcome, or the signal's reason as soon as it aborts (a lock callback then lets go). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    if (signal.aborted) onAbort()
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}
