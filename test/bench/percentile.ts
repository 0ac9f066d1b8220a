/** The `p`-quantile (0–1) of `values` by rank, NaN when there are none; `values` is not reordered. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN
}
