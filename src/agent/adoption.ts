import { fromUnmeasured, type HeldToken } from '../core/timing.js'
import { decodeSessionToken } from '../core/token.js'
import type { AnySessionKeeperError } from '../errors/AnySessionKeeperError.js'
import type { TabChannel } from '../tabs/channel.js'
import { DELAYS } from './delays.js'
import type { AgentEvent } from './events.js'
import type { ResolvedOptions } from './options.js'
import type { TokenSource } from './state.js'

/** What adopting a token found outside this tab's own refresh reads of the tab, and `apply`. */
export interface AdoptionHost {
  readonly options: ResolvedOptions
  readonly tabId: string
  readonly channel: TabChannel | null
  readonly held: HeldToken | null
  readonly loading: boolean
  apply(event: AgentEvent): void
}

/**
 * This tab's own refresh answer replaces the token held even when it is not strictly newer: when
 * issued in the same second (another `jti`), or when the held one came from the channel and
 * claims to be at most a few seconds newer (a forged token can claim no more; see receive.ts). A
 * late answer much older than the token held (a tab that was frozen) does not.
 */
export function isAuthoritative(next: HeldToken, current: HeldToken, heldSource: TokenSource | null): boolean {
  if (next.token.sessionId !== current.token.sessionId) return false
  const behindS = current.token.issuedAt - next.token.issuedAt
  return behindS <= 0 || (heldSource === 'tab' && behindS <= DELAYS.channelFutureToleranceMs / 1000)
}

/**
 * Adopts a token found without a clock measurement (cookie, app-supplied, `setToken`); answers
 * whether it did. Throws `TokenError` when malformed. A later cookie that contradicts the clock is
 * left alone: the tab that refreshed it sends it over the channel with a measured offset.
 */
export function adoptFound(host: AdoptionHost, raw: string, source: TokenSource): boolean {
  const found = fromUnmeasured(decodeSessionToken(raw), host.options.clock.now())
  if (found.suspect && source === 'cookie') return false
  const before = host.held
  host.apply({ type: 'token', held: found, source, from: host.tabId, suspect: found.suspect })
  return host.held !== before && host.held?.token.raw === raw
}

/** Adopts the token in the cookie if it is newer than ours (a sign-in, the proxy, another library). */
export function readCookie(host: AdoptionHost): void {
  const { options } = host
  if (options.initialToken !== undefined) return
  const raw = options.environment.readCookie(options.cookieName)
  if (raw === null || raw === host.held?.token.raw) return
  const sessionBefore = host.held?.token.sessionId
  try {
    const adopted = adoptFound(host, raw, host.loading ? 'startup' : 'cookie')
    // A sign-in as someone else in this browser: tell the other tabs now (their cookie agrees).
    if (adopted && !host.loading && sessionBefore !== undefined && sessionBefore !== host.held!.token.sessionId) shareHeld(host, 'set')
  } catch (error) {
    if (host.held === null) host.apply({ type: 'error', error: error as AnySessionKeeperError })
  }
}

/** Posts the token held, with its clock measurement, to the other tabs. */
export function shareHeld(host: Pick<AdoptionHost, 'held' | 'channel'>, cause: 'refresh' | 'reply' | 'set'): void {
  const held = host.held
  if (!held) return
  const { token, offsetMs, offsetHighMs, skewKnown } = held
  host.channel?.post({
    type: 'token',
    token: token.raw,
    offsetMs,
    ...(offsetHighMs !== undefined ? { offsetHighMs } : {}),
    skewKnown,
    cause,
  })
}
