import type { SessionState } from './state.js'

/** What a binding shows before the keeper has a state of its own, e.g. during server rendering. */
export const LOADING_STATE: SessionState = Object.freeze({
  status: 'loading',
  token: null,
  sessionId: null,
  userId: null,
  expiresAt: null,
  refreshAt: null,
  online: true,
  error: null,
  lastUpdate: null,
  tabId: '',
})
