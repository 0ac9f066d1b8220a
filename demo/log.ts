/** The demo's shared event log: each tab writes its own events and broadcasts them to the others. */
export interface LogEntry {
  tab: string
  /** `token`, `phase`: drawn on the timeline only; the others are also listed. */
  kind: 'opened' | 'refresh' | 'received' | 'signedOut' | 'error' | 'signedIn' | 'request' | 'token' | 'phase'
  at: number
  text: string
  /** For refresh/received/token: the token's iat (to pair a reception with its refresh) and exp. */
  iat?: number
  exp?: number
  /** For token: where the tab got it (`SessionState.lastUpdate.source`). */
  source?: string
  /** For request: the proxy's HTTP status (0: no answer). */
  status?: number
  /** For phase: the tab's condition from now on (`ok`, `at-expiry`, `offline`, …). */
  phase?: string
}

const LISTED = 40
const KEPT = 2_000
type Wire = { type: 'entry'; entry: LogEntry } | { type: 'history?' } | { type: 'history'; entries: LogEntry[] }

export function createLog(list: HTMLOListElement, colorOf: (tab: string) => string, onChange: () => void = () => {}) {
  const entries: LogEntry[] = []
  const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel('session-keeper-demo-log') : null

  function render() {
    const rows = entries
      .filter((e) => e.kind !== 'token' && e.kind !== 'phase')
      .slice(-LISTED)
      .reverse()
    list.replaceChildren(
      ...rows.map((entry) => {
        const li = document.createElement('li')
        li.className = entry.kind
        li.dataset.at = String(entry.at)
        if (entry.iat !== undefined) li.dataset.iat = String(entry.iat)
        const time = document.createElement('time')
        time.textContent =
          new Date(entry.at).toLocaleTimeString(undefined, { hour12: false }) + `.${String(entry.at % 1000).padStart(3, '0')}`
        const who = document.createElement('span')
        who.className = 'who'
        who.style.background = colorOf(entry.tab)
        who.textContent = `Tab ${entry.tab}`
        const what = document.createElement('span')
        what.className = 'what'
        what.textContent = entry.text + delay(entry)
        li.append(time, who, what)
        return li
      }),
    )
    onChange()
  }

  function delay(entry: LogEntry): string {
    if (entry.kind !== 'received') return ''
    const source = entries.find((e) => e.kind === 'refresh' && e.iat === entry.iat)
    return source ? ` (+${Math.max(0, entry.at - source.at)} ms after the refresh)` : ''
  }

  const valid = (e: LogEntry | undefined): e is LogEntry =>
    !!e && typeof e.tab === 'string' && typeof e.text === 'string' && typeof e.at === 'number' && typeof e.kind === 'string'
  const key = (e: LogEntry) => `${e.tab}|${e.kind}|${e.at}|${e.text}`

  function insert(incoming: LogEntry[]) {
    const known = new Set(entries.map(key))
    for (const entry of incoming) if (valid(entry) && !known.has(key(entry))) entries.push(entry)
    entries.sort((a, b) => a.at - b.at)
    if (entries.length > KEPT) entries.splice(0, entries.length - KEPT)
    render()
  }

  function add(entry: LogEntry) {
    insert([entry])
    channel?.postMessage({ type: 'entry', entry } satisfies Wire)
  }

  channel?.addEventListener('message', (event: MessageEvent<Wire>) => {
    const message = event.data
    if (message?.type === 'entry') insert([message.entry])
    // A tab opened later asks for what happened before it: the others answer with their log.
    else if (message?.type === 'history?') channel.postMessage({ type: 'history', entries } satisfies Wire)
    else if (message?.type === 'history' && Array.isArray(message.entries)) insert(message.entries)
  })
  channel?.postMessage({ type: 'history?' } satisfies Wire)
  return { add, entries }
}
