/**
 * Where Clerk's clock stands, as this process sees it through its calls.
 *
 * What is estimated is the *lead* `τ`: a call sent at local time `t` reaches Clerk when Clerk's
 * clock reads `t − τ` (τ = the clock offset, local − Clerk, minus the way in). It is what holding
 * a token until Clerk sees it expired needs: a call sent at `exp + τ` or later finds it expired.
 * It lies in the interval (`low`, `high`], narrowed by every observation:
 *
 * - a token minted during a call sent at `s` and answered at `r`, with `iat` (whole seconds):
 *   τ ∈ (s − iat − 1 s, r − iat];
 * - Clerk's `Date` header `D` (whole seconds) on such a call: τ ∈ (s − D − 1 s, r − D];
 * - Clerk refused a token expiring at `exp` as not expired yet, sent at `s`: τ > s − exp;
 * - Clerk refreshed it (while Clerk refuses unexpired tokens), sent at `s`: τ ≤ s − exp.
 *
 * The last two are exact to the millisecond; holding a request, the proxy walks the interval in
 * quarters while it is wide (`hold.ts`), so each at-expiry refresh leaves a quarter of it. An observation
 * that contradicts the interval means a clock was stepped: it alone counts from then on.
 *
 * The offset itself is at least `τ` (the way in takes no negative time), so Clerk's clock reads
 * at most `t − low` at local time `t`: the browser is told that, and its tokens never look valid
 * for longer than they are. A stamp (`iat` or `Date`, whole seconds) on an answer received at `r`
 * also bounds the offset from above: Clerk's clock had reached the stamp by `r`, so the offset is
 * at most `r − stamp`, and Clerk's clock reads at least `t − (r − stamp)`. The browser is told
 * that too: it says when the browser's token has surely expired, the moment its at-expiry refresh
 * is timed on.
 */
export interface ClerkClock {
  /** The interval (`low`, `high`] of τ in ms, or null before it is known on both sides. */
  lead(): { low: number; high: number } | null
  /** τ lies in (`low`, `high`] (one end may be ±Infinity: a one-sided observation). */
  observe(low: number, high: number): void
  /**
   * A call sent at `sentAt`, answered at `receivedAt`, stamped `secondMs` by Clerk (`Date` or
   * `iat`, whole seconds): τ ∈ (sent − stamp − 1 s, received − stamp], and the offset is at most
   * received − stamp. A stamp that is not a number says nothing.
   */
  observeStamp(sentAt: number, receivedAt: number, secondMs: number): void
  /**
   * Another instance's interval (from the store): taken, for timing only, when this one knows
   * less and it agrees with what this one has proven. Never told to the browser.
   */
  seed(low: number, high: number): void
  /** Clerk's clock reads at most this at local time `t`; null while no lower bound is proven here. */
  clerkTimeAtMost(t: number): number | null
  /** Clerk's clock reads at least this at local time `t`; null while no stamp was observed since the last contradiction. */
  clerkTimeAtLeast(t: number): number | null
}

/** A one-sided observation that resets the interval opens it at least this wide (for timing only). */
const MIN_RESET_WIDTH_MS = 50

export function createClerkClock(): ClerkClock {
  let low = -Infinity
  let high = Infinity
  // The greatest low end observed here since the last contradiction: what the browser is told.
  let provenLow = -Infinity
  // The least upper bound of the offset that stamps proved since then (`observeStamp`).
  let offsetHigh = Infinity
  const known = () => Number.isFinite(low) && Number.isFinite(high)
  function observe(sampleLow: number, sampleHigh: number): void {
    const nextLow = Math.max(low, sampleLow)
    const nextHigh = Math.min(high, sampleHigh)
    if (nextLow < nextHigh) {
      low = nextLow
      high = nextHigh
      provenLow = Math.max(provenLow, sampleLow)
      return
    }
    // Contradiction: the way in changed (jitter), or a clock was stepped. The newest word
    // stands; on its open side the interval spans twice the miss, so that a few halvings
    // find the edge again.
    const miss = Math.max(MIN_RESET_WIDTH_MS, 2 * (nextLow - nextHigh))
    provenLow = sampleLow
    offsetHigh = Infinity
    low = Number.isFinite(sampleLow) ? sampleLow : sampleHigh - miss
    high = Number.isFinite(sampleHigh) ? sampleHigh : sampleLow + miss
  }
  return {
    lead: () => (known() ? { low, high } : null),
    observe,
    observeStamp(sentAt, receivedAt, secondMs) {
      if (!Number.isFinite(secondMs)) return
      observe(sentAt - secondMs - 1_000, receivedAt - secondMs)
      // Clerk's clock had reached the stamp by `receivedAt`. Always above `provenLow`, which the
      // observation just made leaves at most at its own high end.
      offsetHigh = Math.min(offsetHigh, receivedAt - secondMs)
    },
    seed(seedLow, seedHigh) {
      const nextLow = Math.max(seedLow, provenLow)
      if (!(Number.isFinite(nextLow) && Number.isFinite(seedHigh) && nextLow < seedHigh)) return
      if (known() && high - low <= seedHigh - nextLow) return
      low = nextLow
      high = seedHigh
    },
    clerkTimeAtMost: (t) => (Number.isFinite(provenLow) ? Math.floor(t - provenLow) : null),
    clerkTimeAtLeast: (t) => (Number.isFinite(offsetHigh) ? Math.floor(t - offsetHigh) : null),
  }
}
