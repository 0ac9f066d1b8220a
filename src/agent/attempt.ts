import { backoffDelayMs, fromRefresh, withServerDate, type HeldToken } from '../core/timing.js'
import { RefreshError } from '../errors/RefreshError.js'
import type { Agent } from './agent.js'

/**
 * One request to the proxy, made by the tab holding the refresh lock, and what its outcome does:
 * a token is adopted and shared with the other tabs; a failure sets the shared backoff (and
 * still measures the clock from the proxy's `Date`); a 401 ends the session everywhere. A
 * failure never touches a token that is still valid.
 */
export async function attempt(agent: Agent, current: HeldToken): Promise<void> {
  const clock = agent.options.clock
  agent.channel?.post({ type: 'refreshing', sessionId: current.token.sessionId })
  agent.stats.refreshRequests++
  const sentAt = clock.now()
  try {
    const { token } = await agent.transport(current.token)
    if (!agent.running) return
    agent.adopt(fromRefresh(token, sentAt), 'refresh')
    const held = agent.held
    if (held?.token.raw !== token.raw) return // signed out meanwhile, or a newer token arrived
    // Shared even when it equals the token held (issued within the same second): the others
    // then learn its measured clock offset.
    agent.channel?.post({ type: 'token', token: token.raw, offsetMs: held.offsetMs, skewKnown: held.skewKnown, cause: 'refresh' })
    if (agent.backoff) {
      agent.backoff = null
      agent.publish({ error: null })
    }
  } catch (error) {
    if (!(error instanceof RefreshError)) throw error
    agent.stats.refreshFailures++
    if (!agent.running) return
    if (error.code === 'refresh_rejected') return agent.endSession(error, true)
    // A failed refresh still tells the time: an unmeasured token gets a real deadline.
    if (agent.held && !agent.held.skewKnown && error.serverDate !== undefined) {
      agent.held = withServerDate(agent.held, sentAt, error.serverDate)
      agent.suspect = false
    }
    const attempt = (agent.backoff?.attempt ?? -1) + 1
    const { retryBaseDelayMs: baseDelayMs, retryMaxDelayMs: maxDelayMs, random } = agent.options
    const delay = () => backoffDelayMs(attempt, { baseDelayMs, maxDelayMs, random }, error.retryAfterMs)
    const retryAt = error.retryable ? clock.now() + delay() : null
    agent.backoff = { attempt, retryAt: retryAt ?? Infinity, error }
    agent.channel?.post({
      type: 'refresh-failed', sessionId: current.token.sessionId, code: error.code,
      message: error.message.slice(0, 500), attempt, retryAt,
    })
    agent.publish({ error })
  }
}
