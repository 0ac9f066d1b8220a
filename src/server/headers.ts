/**
 * Request headers never forwarded to Clerk as `request_headers`: credentials (they would leak
 * the refresh token and our own auth), hop-by-hop headers, and the forwarding headers that
 * `trustProxy` interprets.
 */
export const EXCLUDED_HEADERS = new Set([
  'cookie', 'authorization', 'proxy-authorization', 'set-cookie', 'connection', 'keep-alive',
  'transfer-encoding', 'upgrade', 'te', 'trailer', 'content-length', 'x-forwarded-for',
  'x-forwarded-host', 'x-forwarded-proto', 'x-real-ip', 'forwarded',
])

/** The browser request's headers in Clerk SDK's shape, `Record<string, string[]>`. */
export function forwardedHeaders(headers: Headers): Record<string, string[]> {
  const out: Record<string, string[]> = {}
  headers.forEach((value, name) => {
    if (EXCLUDED_HEADERS.has(name)) return
    out[name] = value.split(',').map((v) => v.trim())
  })
  return out
}
