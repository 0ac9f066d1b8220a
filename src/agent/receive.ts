import { decodeSessionToken } from '../core/token.js'
import { isRefreshErrorCode, RefreshError } from '../errors/RefreshError.js'
import type { TabMessage } from '../tabs/protocol.js'
import type { Agent } from './agent.js'

/**
 * Applies a validated message from another tab. Messages only ever move a tab towards a newer
 * token, a later retry or the end of the session it holds; anything about another session,
 * older than what the tab has, or unreadable is counted and dropped.
 */
export function receive(agent: Agent, message: TabMessage): void {
  if (!agent.running) return
  const ours = agent.held?.token.sessionId
  const ignore = () => void agent.stats.messagesIgnored++
  switch (message.type) {
    case 'hello':
      if (agent.held && agent.isUsable()) {
        const { token, offsetMs, skewKnown } = agent.held
        agent.channel?.post({ type: 'token', token: token.raw, offsetMs, skewKnown, cause: 'reply' })
      } else if (agent.signedOut && agent.endedSessionId) {
        agent.channel?.post({ type: 'signed-out', sessionId: agent.endedSessionId, rejected: false })
      }
      return
    case 'token': {
      let token
      try {
        token = decodeSessionToken(message.token)
      } catch {
        return ignore()
      }
      if (message.from === agent.remote?.from) agent.remote = null
      const held = { token, offsetMs: message.offsetMs, skewKnown: message.skewKnown }
      if (agent.adopt(held, 'tab', message.from)) agent.stats.tokensFromTabs++
      else if (token.raw !== agent.held?.token.raw) ignore() // older, or of an ended session
      return agent.publish()
    }
    case 'refreshing':
      if (message.sessionId !== ours) return ignore()
      agent.remote = { from: message.from, since: agent.options.clock.now() }
      agent.publish()
      // Stand by behind the refresher: if it dies mid-refresh, the lock passes to us.
      return void agent.refresh('standby')
    case 'refresh-failed': {
      if (message.sessionId !== ours) return ignore()
      if (message.from === agent.remote?.from) agent.remote = null
      const now = agent.options.clock.now()
      // Capped, even "never" (a 400 there): a forged message cannot stop refreshes for long.
      const retryAt = Math.min(message.retryAt ?? Infinity, now + agent.options.retryMaxDelayMs)
      // A code from the channel is only trusted if it belongs to the closed union.
      const code = isRefreshErrorCode(message.code) ? message.code : 'refresh_unavailable'
      const error = new RefreshError(code, `Refresh failed in another tab: ${message.message}`)
      agent.backoff = { attempt: message.attempt, retryAt, error }
      return agent.publish({ error })
    }
    case 'signed-out':
      if (message.sessionId !== null && ours !== undefined && message.sessionId !== ours) return ignore()
      if (agent.signedOut && agent.held === null) return
      return agent.endSession(message.rejected ? new RefreshError('refresh_rejected', 'The session was ended in another tab') : null, false)
    case 'lock':
      return // handled by the fallback lock
  }
}
