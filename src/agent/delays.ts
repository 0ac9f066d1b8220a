/** The agent's fixed delays, by name. Each is small next to a token's lifetime. */
export const DELAYS = {
  /** A timer this late counts as late (sleep, throttling) in the stats. */
  lateTimerMs: 1_000,
  /** `getToken()` answers a token only while it stays valid at least this long: the caller still has to use it. */
  minValidityMs: 250,
  /** A visible tab without focus refreshes this long after the focused one would. */
  visibleTabMs: 250,
  /** A hidden tab refreshes this long after a visible one would. */
  hiddenTabMs: 1_000,
  /** Behind a frozen lock holder, this much of the token's life is kept for our own request (at most half the margin). */
  lockReserveMs: 5_000,
  /** Shortest wait for the refresh lock before stealing it. */
  lockWaitMinMs: 250,
  /** Up to this much is added to the lock wait, so tabs behind one frozen holder do not steal at once. */
  lockJitterMs: 250,
  /** A token from another tab may claim an `iat` this far in the receiver's future (Clerk allows 5 s, plus truncation). */
  channelFutureToleranceMs: 6_000,
  /** A tab that steals the lock first waits for the outcome of a refresh announced this recently. */
  recentAnnouncementMs: 1_000,
  /** A changed cookie is read this long after the change, once the channel had its say. */
  cookieSettleMs: 300,
  /** When refreshing at expiry: this long after the token has surely expired on the issuer's clock. */
  atExpiryGraceMs: 50,
  /** Refreshing at expiry, a token past expiry whose refresh is due within this long shows as `refreshing`. */
  atExpiryPlannedMs: 2_500,
} as const
