/** The demo's shared event log: each tab writes its own events and broadcasts them to the others. */
export interface LogEntry {
  tab: string
  kind: 'opened' | 'refresh' | 'received' | 'signedOut' | 'error' | 'signedIn'
  at: number
  text: string
  /** For refresh/received: the token's iat, to pair a reception with its refresh. */
  iat?: number
}

export function createLog(list: HTMLOListElement, colorOf: (tab: string) => string) {
  const entries: LogEntry[] = []
  const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel('session-keeper-demo-log') : null

  function render() {
    const rows = entries.slice(-200).reverse()
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
  }

  function delay(entry: LogEntry): string {
    if (entry.kind !== 'received') return ''
    const source = entries.find((e) => e.kind === 'refresh' && e.iat === entry.iat)
    return source ? ` (+${Math.max(0, entry.at - source.at)} ms after the refresh)` : ''
  }

  function add(entry: LogEntry, broadcast = true) {
    entries.push(entry)
    entries.sort((a, b) => a.at - b.at)
    if (broadcast) channel?.postMessage(entry)
    render()
  }

  channel?.addEventListener('message', (event: MessageEvent<LogEntry>) => {
    const e = event.data
    if (e && typeof e.tab === 'string' && typeof e.text === 'string' && typeof e.at === 'number') add(e, false)
  })
  return { add, entries }
}
