/* The agent's fixed delays, by name. Each is small next to a token's lifetime. */

/** A timer this late counts as late (sleep, throttling) in the stats. */
export const LATE_TIMER_MS = 1_000
/** `getToken()` answers a token only while it stays valid at least this long: the caller still has to use it. */
export const MIN_VALIDITY_MS = 250
/** A visible tab without focus refreshes this long after the focused one would. */
export const VISIBLE_TAB_MS = 250
/** A hidden tab refreshes this long after a visible one would. */
export const HIDDEN_TAB_MS = 1_000
/** Behind a frozen lock holder, this much of the token's life is kept for our own request (at most half the margin). */
export const LOCK_RESERVE_MS = 5_000
/** Shortest wait for the refresh lock before stealing it. */
export const LOCK_WAIT_MIN_MS = 250
/** Up to this much is added to the lock wait, so tabs behind one frozen holder do not steal at once. */
export const LOCK_JITTER_MS = 250
/** A token from another tab may claim an `iat` this far in the receiver's future (Clerk allows 5 s, plus truncation). */
export const CHANNEL_FUTURE_TOLERANCE_MS = 6_000
/** A tab that steals the lock first waits for the outcome of a refresh announced this recently. */
export const RECENT_ANNOUNCEMENT_MS = 1_000
/** A changed cookie is read this long after the change, once the channel had its say. */
export const COOKIE_SETTLE_MS = 300
/** When refreshing at expiry: this long after the token has surely expired on the issuer's clock. */
export const AT_EXPIRY_GRACE_MS = 50
/** Refreshing at expiry, a token past expiry whose refresh is due within this long shows as `refreshing`. */
export const AT_EXPIRY_PLANNED_MS = 2_500
/** After a 409 `token_consumed`, the cookie is watched this long for the token that superseded ours. */
export const SUPERSEDED_WAIT_MS = 2_000
/** How often it is looked at meanwhile (not the environment's `COOKIE_POLL_MS`, a change watch without the Cookie Store API). */
export const SUPERSEDED_POLL_MS = 100
