import { createSessionKeeper, decodeSessionToken, type SessionState } from 'session-keeper'
import { describe, startApiCalls } from './api.js'
import { createLog } from './log.js'
import { createTimeline } from './timeline.js'

/** Clerk's middleware accepts a token this long after its expiry: a page load before then runs no handshake. */
const CLERK_SKEW_MS = 5_000
const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T
const colorOf = (name: string) => `hsl(${[...name].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 360, 7)} 60% 45%)`
const timeline = createTimeline($('timeline'), colorOf)
const log = createLog($<HTMLOListElement>('log'), colorOf, () => timeline.render(log.entries, Date.now()))

// The demo uses the library exactly as an app would; its `fetch` only notes each refresh request.
const keeper = createSessionKeeper({ endpoint: '/api/session/refresh', fetch: noted })
const tab = keeper.getState().tabId.slice(0, 4).toUpperCase()
$('tab-badge').textContent = `Tab ${tab}`
$('tab-badge').style.background = colorOf(tab)
document.title = `session-keeper · Tab ${tab}`
log.add({ tab, kind: 'opened', at: Date.now(), text: 'opened' })
// Back from Clerk's hosted sign-in: the page load that brought us here ran the middleware's handshake.
if (new URLSearchParams(location.search).get('via') === 'sign-in') {
  history.replaceState(null, '', location.pathname)
  log.add({ tab, kind: 'signedIn', at: Date.now(), text: "signed in: Clerk's hosted sign-in, then the middleware's handshake" })
}

/** `fetch`, noting every refresh request and its answer in the shared log (refusals included). */
async function noted(input: Request | string | URL, init?: RequestInit): Promise<Response> {
  const at = Date.now()
  try {
    const response = await fetch(input, init)
    const code = response.ok
      ? ''
      : await response
          .clone()
          .json()
          .then(
            (b: { error?: { code?: string } }) => b.error?.code ?? '',
            () => '',
          )
    const text = response.ok ? `refresh request: 200 in ${Date.now() - at} ms` : `refresh request: ${response.status} ${code}`.trim()
    log.add({ tab, kind: 'request', at, status: response.status, text })
    return response
  } catch (error) {
    log.add({ tab, kind: 'request', at, status: 0, text: 'refresh request: no answer (network)' })
    throw error
  }
}

/** The tab's condition, as the timeline shades it. */
function phaseOf(state: SessionState): string {
  if (state.status === 'signedOut') return 'signed-out'
  if (!state.online) return 'offline'
  if (state.error?.code === 'recovery_required') return 'recovery'
  if (state.error?.code === 'refresh_rate_limited') return 'rate-limited'
  if (state.refreshAt !== null && state.expiresAt !== null && state.refreshAt >= state.expiresAt) return 'at-expiry'
  return 'ok'
}

let previous: SessionState = keeper.getState()
let phase = 'ok'
keeper.subscribe((state) => {
  describeChange(previous, state)
  previous = state
  const now = phaseOf(state)
  if (now !== phase && state.status !== 'loading') log.add({ tab, kind: 'phase', at: Date.now(), phase: now, text: now })
  phase = now
  render()
})
keeper.start()
setInterval(() => timeline.render(log.entries, Date.now()), 1_000)

function describeChange(before: SessionState, after: SessionState) {
  const at = Date.now()
  if (after.token && after.token !== before.token && after.lastUpdate) {
    const { issuedAt: iat, expiresAt: exp } = decodeSessionToken(after.token)
    const source = after.lastUpdate.source
    if (after.lastUpdate.at >= (before.lastUpdate?.at ?? 0))
      log.add({ tab, kind: 'token', at, iat, exp, source, text: `token from ${source}` })
    const from = after.lastUpdate.tabId.slice(0, 4).toUpperCase()
    if (after.lastUpdate.source === 'refresh') log.add({ tab, kind: 'refresh', at, iat, text: 'refreshed the token through the proxy' })
    if (after.lastUpdate.source === 'tab')
      log.add({ tab, kind: 'received', at, iat, text: `received it from Tab ${from} over BroadcastChannel, no request` })
    if (after.lastUpdate.source === 'cookie')
      log.add({ tab, kind: 'received', at, iat, text: 'took it from the __session cookie the proxy set, no request' })
  }
  if (after.status === 'signedOut' && before.status !== 'signedOut' && before.status !== 'loading') {
    log.add({ tab, kind: 'signedOut', at, text: after.error ? `signed out: ${after.error.code}` : 'signed out' })
  }
  if (after.error && after.error !== before.error && after.status !== 'signedOut') {
    log.add({ tab, kind: 'error', at, text: `${after.error.code}: ${after.error.message} (token kept)` })
  }
}

function seconds(ms: number | null): string {
  return ms === null ? '—' : `${Math.max(0, ms / 1000).toFixed(1)} s`
}

function render() {
  const state = keeper.getState()
  const pill = $('status-pill')
  pill.textContent = state.status
  pill.className = `pill ${state.status}`
  // The session lasts while its token is renewed; `token` is null for the moments it has expired.
  const signedIn = state.sessionId !== null && state.status !== 'signedOut'
  $('signed-in').hidden = !signedIn
  $('signed-out').hidden = signedIn || state.status === 'loading'
  $('user').textContent = state.userId ?? '—'
  $('session').textContent = state.sessionId ?? '—'
  $('online').textContent = state.online ? 'online' : 'offline: waiting for the network'
  $('error').textContent = state.error ? `${state.error.code}: ${state.error.message}` : 'none'
  // Actions on a session need one.
  for (const id of ['sign-out', 'revoke', 'forget-refresh']) $<HTMLButtonElement>(id).disabled = !signedIn
  if (state.token) {
    // The JWT's payload as issued: decoded, not verified (the proxy and your backend verify).
    const payload = JSON.parse(atob(state.token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/')))
    $('claims').textContent = JSON.stringify(payload, null, 2)
  }
  tick()
}

/** The countdowns; a display timer of the demo page, not of the agent. */
function tick() {
  const state = keeper.getState()
  const now = Date.now()
  // Recovery: a reload helps once the middleware will run its handshake (the token expired past its skew).
  const reload = $<HTMLButtonElement>('reload')
  const handshakeIn = state.expiresAt === null ? 0 : state.expiresAt + CLERK_SKEW_MS + 1_000 - now
  reload.disabled = state.error?.code !== 'recovery_required' || handshakeIn > 0
  reload.textContent =
    state.error?.code === 'recovery_required' && handshakeIn > 0
      ? `Reload (Clerk's handshake) in ${seconds(handshakeIn)}`
      : "Reload (Clerk's handshake)"
  $('expires-in').textContent = seconds(state.expiresAt === null ? null : state.expiresAt - now)
  const atExpiry = state.refreshAt !== null && state.expiresAt !== null && state.refreshAt >= state.expiresAt
  $('refresh-in').textContent =
    state.refreshAt === null
      ? '—'
      : state.refreshAt <= now
        ? 'now'
        : atExpiry
          ? `${seconds(state.refreshAt - now)}, just after expiry: Clerk refuses early refreshes`
          : `${seconds(state.refreshAt - now)}, before expiry`
  if (state.token && state.expiresAt) {
    const lifetime = decodeSessionToken(state.token).lifetimeMs
    $('expires-bar').style.width = `${Math.max(0, Math.min(100, ((state.expiresAt - now) / lifetime) * 100))}%`
  }
}
setInterval(tick, 200)

/** When a control was last clicked in this tab (a stats answer asked for before it is stale). */
let controlsChangedAt = 0
async function api(path: string, body: unknown = {}) {
  const response = await fetch(`/demo-api${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  return response.json()
}

// Clerk's hosted sign-in (the emulated Frontend API at /__clerk): it starts the session and comes
// back to this page, whose load runs Clerk's handshake; the agent then finds the __session cookie.
$('sign-in').addEventListener('click', () => {
  const back = `${location.origin}/?via=sign-in`
  location.assign(`/__clerk/sign-in?redirect_url=${encodeURIComponent(back)}&user_id=user_demo`)
})
$('open-tab').addEventListener('click', () => window.open(location.pathname, '_blank'))
// As Clerk's browser SDK signs out: the Frontend API ends the session (and sets __client_uat=0),
// or Clerk's middleware would sign the next page load in again; then every tab, without a request.
$('sign-out').addEventListener('click', async () => {
  const { sessionId } = keeper.getState()
  if (sessionId) await fetch(`/__clerk/v1/client/sessions/${encodeURIComponent(sessionId)}/end`, { method: 'POST' }).catch(() => null)
  keeper.signOut()
})
$('reload').addEventListener('click', () => location.reload())
$('revoke').addEventListener('click', async () => {
  const { sessionId } = keeper.getState()
  if (!sessionId) return
  await api('/revoke', { sessionId })
  log.add({ tab, kind: 'error', at: Date.now(), text: 'revoked the session on the server: the next refresh gets 401' })
})
for (const button of $('upstream').querySelectorAll<HTMLButtonElement>('button')) {
  button.addEventListener('click', async () => {
    controlsChangedAt = Date.now()
    await api('/upstream', { mode: button.dataset.mode })
    for (const b of $('upstream').querySelectorAll('button')) b.classList.toggle('on', b === button)
  })
}
for (const button of $('early').querySelectorAll<HTMLButtonElement>('button')) {
  button.addEventListener('click', async () => {
    controlsChangedAt = Date.now()
    await api('/early', { policy: button.dataset.policy })
    for (const b of $('early').querySelectorAll('button')) b.classList.toggle('on', b === button)
  })
}
$('forget-refresh').addEventListener('click', async () => {
  const { sessionId } = keeper.getState()
  if (!sessionId) return
  await api('/forget-refresh-token', { sessionId })
  log.add({
    tab,
    kind: 'error',
    at: Date.now(),
    text: "the emulated Clerk no longer knows this browser's refresh cookie: the next refresh gets 409",
  })
})
window.addEventListener('session-keeper:recovery', () => {
  log.add({
    tab,
    kind: 'error',
    at: Date.now(),
    text: "recovery required: the token is kept until it expires; a page load once it has expired runs Clerk's handshake",
  })
})
for (const button of $('lifetime').querySelectorAll<HTMLButtonElement>('button')) {
  button.addEventListener('click', async () => {
    controlsChangedAt = Date.now()
    await api('/lifetime', { seconds: Number(button.dataset.seconds) })
    for (const b of $('lifetime').querySelectorAll('button')) b.classList.toggle('on', b === button)
  })
}
// Also in background tabs (at the browser's throttled pace): every tab shows the same counters,
// and the controls as the server has them (another tab may have switched them; a sign-in reloads).
async function showStats() {
  const asked = Date.now()
  const stats = await (await fetch('/demo-api/stats')).json()
  $('emulator-stats').textContent =
    `Refreshes at the emulator: ${stats.refreshes} (by Clerk's middleware itself: ${stats.middlewareRefreshes}) · refused: ${stats.rejected} · failed by injection: ${stats.faulted} · handshakes: ${stats.handshakes}`
  if (asked < controlsChangedAt) return // a click since: its answer already set the buttons
  const select = (group: string, attribute: string, value: unknown) => {
    for (const b of $(group).querySelectorAll('button')) b.classList.toggle('on', b.getAttribute(attribute) === String(value))
  }
  select('upstream', 'data-mode', stats.upstream)
  select('early', 'data-policy', stats.unexpiredTokens)
  select('lifetime', 'data-seconds', stats.lifetimeSeconds)
}
setInterval(showStats, 2000)
void showStats()

// The app's own API behind Clerk's middleware, called from every tab while it has a session.
startApiCalls({
  list: $<HTMLOListElement>('api-calls'),
  periodMs: 2_000,
  wanted: () => keeper.getState().sessionId !== null && keeper.getState().status !== 'signedOut',
  onVerdict(verdict, totals) {
    $('api-ok').textContent = String(totals.signedIn)
    $('api-refused').textContent = String(totals.unauthorized + totals.other)
    $('api-refreshed').textContent = String(totals.refreshedByMiddleware)
    if (verdict.status !== 200 || verdict.answer?.refreshedByMiddleware)
      log.add({ tab, kind: 'error', at: verdict.at, text: `GET /api/me (Clerk's middleware): ${describe(verdict)}` })
  },
})
render()
