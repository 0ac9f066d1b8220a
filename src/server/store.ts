/**
 * What the proxy shares between requests, and between instances when the store is shared:
 * refresh results for idempotent replay, in-flight claims, rate-limit counters and what it
 * learned about Clerk. Small and async, so that Redis (or any key-value service with expiry)
 * fits in a few lines. Keys are opaque strings; values are strings; every entry expires.
 */
export interface RefreshStore {
  /** The value under `key`, or null when there is none (or it expired). */
  get(key: string): Promise<string | null>
  /**
   * Stores `value` under `key` for `ttlMs`. With `onlyIfAbsent`, only when no live value is there.
   * Answers whether it stored.
   */
  set(key: string, value: string, ttlMs: number, options?: { onlyIfAbsent?: boolean }): Promise<boolean>
  /** Adds 1 to the counter under `key`, which expires `ttlMs` after its first increment; answers the count. */
  increment(key: string, ttlMs: number): Promise<number>
  /** Removes `key`. */
  delete(key: string): Promise<void>
}

export interface MemoryStoreOptions {
  /** Entries kept at most; the oldest go first. @default 10_000 */
  maxEntries?: number
  /** Bytes of keys and values kept at most (UTF-16 length × 2). @default 8 MiB */
  maxBytes?: number
  /** @default Date.now */
  now?: () => number
}

interface Entry {
  value: string
  expiresAt: number
  bytes: number
}

/** The default store: this process's memory, bounded in entries and bytes. */
export function createMemoryStore(options: MemoryStoreOptions = {}): RefreshStore {
  const maxEntries = options.maxEntries ?? 10_000
  const maxBytes = options.maxBytes ?? 8 * 1024 * 1024
  const now = options.now ?? (() => Date.now())
  const entries = new Map<string, Entry>()
  let bytes = 0

  function live(key: string): Entry | undefined {
    const entry = entries.get(key)
    if (entry && entry.expiresAt <= now()) {
      remove(key)
      return undefined
    }
    return entry
  }

  function remove(key: string): void {
    const entry = entries.get(key)
    if (!entry) return
    bytes -= entry.bytes
    entries.delete(key)
  }

  function put(key: string, value: string, ttlMs: number): void {
    remove(key)
    const entry = { value, expiresAt: now() + ttlMs, bytes: (key.length + value.length) * 2 }
    if (entry.bytes > maxBytes) return
    entries.set(key, entry)
    bytes += entry.bytes
    // Map order is insertion order: evict expired and then the oldest entries.
    for (const [oldKey, old] of entries) {
      if (entries.size <= maxEntries && bytes <= maxBytes && old.expiresAt > now()) break
      if (oldKey !== key) remove(oldKey)
    }
  }

  return {
    async get(key) {
      return live(key)?.value ?? null
    },
    async set(key, value, ttlMs, { onlyIfAbsent = false } = {}) {
      if (onlyIfAbsent && live(key)) return false
      put(key, value, ttlMs)
      return true
    },
    async increment(key, ttlMs) {
      const entry = live(key)
      if (!entry) {
        put(key, '1', ttlMs)
        return 1
      }
      entry.value = String(Number(entry.value) + 1)
      return Number(entry.value)
    },
    async delete(key) {
      remove(key)
    },
  }
}

export interface ResilientStoreOptions {
  /** Longest a store call may take before the fallback answers instead. */
  timeoutMs: number
  /** After a failure, the primary is left alone this long (no timeout paid per call). @default 1_000 */
  cooldownMs?: number
  now: () => number
}

/**
 * Fails open: every call to `primary` (Redis) is bounded by `timeoutMs`; on an error or a timeout
 * the `fallback` (this process's memory) answers; after an error `primary` is skipped for
 * `cooldownMs` (a slow call alone does not take it out of service).
 * A slow or dead Redis costs a refresh at most `timeoutMs` once, never a hang or a sign-out.
 * `onFailure` runs for every call that the fallback answered.
 */
export function createResilientStore(primary: RefreshStore, fallback: RefreshStore, options: ResilientStoreOptions) {
  const cooldownMs = options.cooldownMs ?? 1_000
  let downUntil = -Infinity

  async function attempt<R>(onFailure: () => void, viaPrimary: () => Promise<R>, viaFallback: () => Promise<R>): Promise<R> {
    if (options.now() < downUntil) {
      onFailure()
      return viaFallback()
    }
    let timer: ReturnType<typeof setTimeout> | undefined
    const slow = Symbol('slow')
    try {
      const timeout = new Promise<typeof slow>((resolve) => {
        timer = setTimeout(() => resolve(slow), options.timeoutMs)
      })
      const answer = await Promise.race([viaPrimary(), timeout])
      if (answer !== slow) return answer
      // Slow, not down: this call is answered from memory, the next one tries again.
    } catch {
      // Down (an error, a refused connection): leave it alone for a while.
      downUntil = options.now() + cooldownMs
    } finally {
      clearTimeout(timer)
    }
    onFailure()
    return viaFallback()
  }

  /** A view of the store for one request: `onFailure` hears of every call the fallback answered. */
  return (onFailure: () => void): RefreshStore => ({
    get: (key) =>
      attempt(
        onFailure,
        () => primary.get(key),
        () => fallback.get(key),
      ),
    set: (key, value, ttlMs, opts) =>
      attempt(
        onFailure,
        () => primary.set(key, value, ttlMs, opts),
        () => fallback.set(key, value, ttlMs, opts),
      ),
    increment: (key, ttlMs) =>
      attempt(
        onFailure,
        () => primary.increment(key, ttlMs),
        () => fallback.increment(key, ttlMs),
      ),
    delete: (key) =>
      attempt(
        onFailure,
        () => primary.delete(key),
        () => fallback.delete(key),
      ),
  })
}
