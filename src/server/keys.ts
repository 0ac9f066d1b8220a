/**
 * Every key the proxy writes to its store, in one place: namespaced and versioned (`sk:v1:`), and
 * never a raw token or cookie (the variable part is always a keyed hash, see `secrets.ts`).
 */
export const STORE_KEYS = {
  /** + hash(session, token, refresh cookie): a sealed refresh result, for idempotent replay. */
  replay: 'sk:v1:replay:',
  /** + hash(`s:<session>` or `c:<client IP>`) + `:<window>`: a rate-limit counter. */
  limit: 'sk:v1:limit:',
  /** + hash('budget') + `:<window>`: the whole app's calls to Clerk in this window. */
  budget: 'sk:v1:budget:',
  /** `'refused'` while Clerk is believed to refuse unexpired tokens. */
  early: 'sk:v1:early-refresh',
  /** `[low, high]`: the last interval of Clerk's lead an instance learned (`clerkClock.ts`), for timing holds. */
  clerkLead: 'sk:v1:clerk-lead',
  /** + hash(session, token, refresh cookies): the instance calling Clerk for this refresh. */
  claim: 'sk:v1:claim:',
  /** + the same hash: that call's failure, for the instances that waited on it. */
  failure: 'sk:v1:failure:',
} as const
