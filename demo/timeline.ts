import type { LogEntry } from './log.js'

/**
 * The shared log drawn as a picture: one lane per tab over the last `windowMs`, each token's life
 * as a bar (coloured by where the tab got it), each refresh request as a mark with its outcome,
 * each hand-over as a tick joined to the request that produced it, and the periods of recovery,
 * refreshing at expiry, offline, rate limit and sign-out shaded. Every mark can be focused with
 * the keyboard and says in words what it shows.
 */

const SVG = 'http://www.w3.org/2000/svg'
const LANE_HEIGHT = 34
const TOP = 22
const LABEL_WIDTH = 64

/** Where a tab got its token: its own refresh, another tab, the cookie, or start-up/sign-in. */
export const SOURCE_COLORS: Record<string, string> = {
  refresh: '#2f6fde',
  tab: '#1f9d6a',
  cookie: '#b7791f',
  startup: '#7a7f8a',
  setToken: '#7a7f8a',
}
export const PHASE_COLORS: Record<string, string> = {
  'at-expiry': 'rgba(47, 111, 222, 0.12)',
  recovery: 'rgba(214, 90, 40, 0.18)',
  offline: 'rgba(120, 120, 120, 0.22)',
  'rate-limited': 'rgba(200, 50, 50, 0.18)',
  'signed-out': 'rgba(60, 60, 60, 0.28)',
}
const PHASE_WORDS: Record<string, string> = {
  'at-expiry': 'refreshing at expiry (Clerk refuses early refreshes)',
  recovery: 'recovery required',
  offline: 'offline',
  'rate-limited': 'rate limited',
  'signed-out': 'signed out',
}

function el<K extends keyof SVGElementTagNameMap>(name: K, attributes: Record<string, string | number>, label?: string) {
  const node = document.createElementNS(SVG, name)
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value))
  if (label) {
    const title = document.createElementNS(SVG, 'title')
    title.textContent = label
    node.append(title)
    node.setAttribute('tabindex', '0')
    node.setAttribute('role', 'img')
    node.setAttribute('aria-label', label)
  }
  return node
}

const clock = (at: number) => new Date(at).toLocaleTimeString(undefined, { hour12: false })

export interface Timeline {
  render(entries: readonly LogEntry[], now: number): void
}

export function createTimeline(host: HTMLElement, colorOf: (tab: string) => string): Timeline {
  const svg = el('svg', { class: 'timeline', role: 'group', 'aria-label': 'Timeline of every tab' })
  host.replaceChildren(svg, legend())

  function render(entries: readonly LogEntry[], now: number): void {
    const width = Math.max(320, host.clientWidth || 800)
    // What happened so far, up to the last minute on a phone and the last two on a wider screen.
    const first = entries[0]?.at ?? now
    const windowMs = Math.min(width < 600 ? 60_000 : 120_000, Math.max(30_000, Math.ceil((now - first + 5_000) / 10_000) * 10_000))
    const from = now - windowMs
    const tabs = [...new Set(entries.map((e) => e.tab))]
    const height = TOP + tabs.length * LANE_HEIGHT + 4
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`)
    svg.setAttribute('width', String(width))
    svg.setAttribute('height', String(height))
    const plotWidth = width - LABEL_WIDTH - 8
    const x = (at: number) => LABEL_WIDTH + Math.max(0, Math.min(1, (at - from) / windowMs)) * plotWidth
    const laneY = (tab: string) => TOP + tabs.indexOf(tab) * LANE_HEIGHT
    const nodes: SVGElement[] = []

    // The time axis: a tick every 10 s.
    for (let t = Math.ceil(from / 10_000) * 10_000; t <= now; t += 10_000) {
      nodes.push(el('line', { x1: x(t), x2: x(t), y1: TOP - 4, y2: height, class: 'grid' }))
      const label = el('text', { x: x(t), y: TOP - 8, class: 'axis', 'text-anchor': 'middle' })
      label.textContent = `${Math.round((t - now) / 1000)} s`
      nodes.push(label)
    }

    for (const tab of tabs) {
      const y = laneY(tab)
      const name = el('text', { x: 4, y: y + 20, class: 'lane-label', fill: colorOf(tab) })
      name.textContent = `Tab ${tab}`
      nodes.push(name)
      const mine = entries.filter((e) => e.tab === tab)

      // Shaded periods: from each phase change to the next one of this tab.
      const phases = mine.filter((e) => e.kind === 'phase')
      phases.forEach((phase, i) => {
        const end = phases[i + 1]?.at ?? now
        if (!phase.phase || phase.phase === 'ok' || end < from) return
        const words = `Tab ${tab}: ${PHASE_WORDS[phase.phase] ?? phase.phase} from ${clock(phase.at)} to ${end === now ? 'now' : clock(end)}`
        const w = Math.max(1, x(end) - x(phase.at))
        nodes.push(
          el(
            'rect',
            { x: x(phase.at), y: y + 2, width: w, height: LANE_HEIGHT - 4, fill: PHASE_COLORS[phase.phase] ?? 'none', class: 'phase' },
            words,
          ),
        )
      })

      // Token lives: each token the tab held, from issue to expiry.
      for (const token of mine.filter((e) => e.kind === 'token' && e.exp !== undefined && e.iat !== undefined)) {
        const start = token.iat! * 1000
        const end = token.exp! * 1000
        if (end < from) continue
        const source = token.source ?? 'startup'
        const words = `Tab ${tab} held a token from ${clock(start)} to ${clock(end)}, got from ${describeSource(source)} at ${clock(token.at)}`
        nodes.push(
          el(
            'rect',
            {
              x: x(start),
              y: y + 12,
              width: Math.max(2, x(end) - x(start)),
              height: 10,
              rx: 3,
              fill: SOURCE_COLORS[source] ?? '#888',
              class: 'life',
            },
            words,
          ),
        )
      }

      // Requests, with their outcome.
      for (const request of mine.filter((e) => e.kind === 'request' && e.at >= from)) {
        const ok = request.status === 200
        const words = `Tab ${tab} sent a refresh request at ${clock(request.at)}: ${request.text}`
        nodes.push(el('circle', { cx: x(request.at), cy: y + 17, r: 5, class: ok ? 'request ok' : 'request failed' }, words))
      }

      // Hand-overs: the moment this tab received a token another tab refreshed.
      for (const received of mine.filter((e) => e.kind === 'received' && e.at >= from)) {
        const refresh = entries.find((e) => e.kind === 'refresh' && e.iat === received.iat)
        if (refresh && tabs.includes(refresh.tab)) {
          nodes.push(el('line', { x1: x(refresh.at), y1: laneY(refresh.tab) + 17, x2: x(received.at), y2: y + 17, class: 'handover' }))
        }
        const after = refresh ? ` ${Math.max(0, received.at - refresh.at)} ms after Tab ${refresh.tab} refreshed it` : ''
        const words = `Tab ${tab} received a new token at ${clock(received.at)}${after}, without a request`
        nodes.push(el('rect', { x: x(received.at) - 1.5, y: y + 6, width: 3, height: 22, class: 'received' }, words))
      }
    }
    svg.replaceChildren(...nodes)
  }

  return { render }
}

/** What the colours mean, as text that wraps on a phone. */
function legend(): HTMLElement {
  const p = document.createElement('p')
  p.className = 'timeline-legend'
  const items: [string, string, string][] = [
    ['bar', SOURCE_COLORS.refresh!, "a token's life, from its own refresh"],
    ['bar', SOURCE_COLORS.tab!, 'from another tab'],
    ['bar', SOURCE_COLORS.cookie!, 'from the cookie'],
    ['bar', SOURCE_COLORS.startup!, 'at sign-in or start-up'],
    ['dot', '#2f6fde', 'a refresh request'],
    ['dot', '#c53030', 'a refused or failed one'],
    ['tick', '#1f9d6a', 'a hand-over (no request)'],
    ['shade', PHASE_COLORS['at-expiry']!, 'refreshing at expiry'],
    ['shade', PHASE_COLORS['rate-limited']!, 'rate limited'],
    ['shade', PHASE_COLORS.recovery!, 'recovery'],
    ['shade', PHASE_COLORS.offline!, 'offline'],
    ['shade', PHASE_COLORS['signed-out']!, 'signed out'],
  ]
  for (const [shape, color, words] of items) {
    const item = document.createElement('span')
    const swatch = document.createElement('i')
    swatch.className = shape
    swatch.style.background = color
    item.append(swatch, words)
    p.append(item)
  }
  return p
}

function describeSource(source: string): string {
  if (source === 'refresh') return 'its own refresh'
  if (source === 'tab') return 'another tab'
  if (source === 'cookie') return 'the cookie'
  return 'sign-in or start-up'
}
