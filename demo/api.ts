import type { MeAnswer } from './clerk-app.js'

/** One call of the page to its own API, and what Clerk's middleware said of it. */
export interface Verdict {
  at: number
  /** HTTP status, 0 when no answer came. */
  status: number
  answer: MeAnswer | null
}

export interface ApiCalls {
  /** Totals since the page loaded. */
  readonly counts: { signedIn: number; unauthorized: number; other: number; refreshedByMiddleware: number }
  stop(): void
}

const LISTED = 6

/**
 * The page's own API calls: `GET /api/me` every `periodMs` while `wanted()`, with credentials
 * (the `__session` cookie) as any `fetch` of the app's, judged by Clerk's middleware alone. Each
 * verdict is listed (latest first) in `list` and handed to `onVerdict`.
 */
export function startApiCalls(options: {
  list: HTMLOListElement
  periodMs: number
  wanted: () => boolean
  onVerdict: (verdict: Verdict, counts: ApiCalls['counts']) => void
}): ApiCalls {
  const counts = { signedIn: 0, unauthorized: 0, other: 0, refreshedByMiddleware: 0 }
  const recent: Verdict[] = []

  async function call(): Promise<void> {
    const at = Date.now()
    let verdict: Verdict
    try {
      const response = await fetch('/api/me', { headers: { accept: 'application/json' }, cache: 'no-store' })
      const answer = (await response.json().catch(() => null)) as MeAnswer | null
      verdict = { at, status: response.status, answer }
    } catch {
      verdict = { at, status: 0, answer: null }
    }
    if (verdict.status === 200) counts.signedIn++
    else if (verdict.status === 401) counts.unauthorized++
    else counts.other++
    if (verdict.answer?.refreshedByMiddleware) counts.refreshedByMiddleware++
    recent.unshift(verdict)
    recent.length = Math.min(recent.length, LISTED)
    render()
    options.onVerdict(verdict, counts)
  }

  function render(): void {
    options.list.replaceChildren(
      ...recent.map((v) => {
        const li = document.createElement('li')
        li.className = v.status === 200 ? 'ok' : 'refused'
        li.dataset.status = String(v.status)
        const time = document.createElement('time')
        time.textContent = new Date(v.at).toLocaleTimeString(undefined, { hour12: false })
        const what = document.createElement('span')
        what.textContent = describe(v)
        li.append(time, what)
        return li
      }),
    )
  }

  const timer = setInterval(() => {
    if (options.wanted()) void call()
  }, options.periodMs)
  if (options.wanted()) void call()
  return { counts, stop: () => clearInterval(timer) }
}

/** A verdict in words. */
export function describe(v: Verdict): string {
  if (v.status === 0) return 'GET /api/me: no answer (network)'
  if (v.status === 200 && v.answer?.signedIn)
    return `200 signed in as ${v.answer.userId}${v.answer.refreshedByMiddleware ? ' (the middleware refreshed the token itself)' : ''}`
  if (v.status === 401) return `401 signed out: ${v.answer?.reason ?? 'no reason given'}`
  return `${v.status}`
}
