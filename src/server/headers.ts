/**
 * The browser request's headers that go to Clerk as `request_headers`: only those that describe
 * the browser. Everything else stays here: cookies, credentials of any kind (load balancers' and
 * identity-aware proxies' assertions, API keys, CSRF tokens), forwarding headers, hop-by-hop.
 */
export const FORWARDED_HEADERS: readonly string[] = [
  'user-agent',
  'accept',
  'accept-language',
  'accept-encoding',
  'origin',
  'referer',
  'dnt',
  'sec-gpc',
  'sec-fetch-site',
  'sec-fetch-mode',
  'sec-fetch-dest',
  'sec-fetch-user',
]

/** Client hints (`sec-ch-ua`, `sec-ch-ua-platform`, `sec-ch-ua-mobile`, …) describe the browser too. */
const CLIENT_HINT = /^sec-ch-[a-z0-9-]+$/
const MAX_VALUE_LENGTH = 2_048

/**
 * In the shape Clerk's SDK sends, `Record<string, string[]>`: each value a one-element array,
 * verbatim (a User-Agent has commas; it is never split). A Referer loses its query and fragment,
 * where secrets travel.
 */
export function forwardedHeaders(headers: Headers): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  headers.forEach((value, name) => {
    if (!FORWARDED_HEADERS.includes(name) && !CLIENT_HINT.test(name)) return
    if (value.length > MAX_VALUE_LENGTH) return
    out[name] = [name === 'referer' ? stripQuery(value) : value]
  })
  return out
}

function stripQuery(referer: string): string {
  try {
    const url = new URL(referer)
    return `${url.origin}${url.pathname}`
  } catch {
    return ''
  }
}
