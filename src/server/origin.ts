/** Connection facts a fetch `Request` does not carry; `toNodeHandler` fills them in. */
export interface RequestContext {
  /** The socket's peer address: the browser, or the reverse proxy in front of this server. */
  clientIp?: string
}

export interface ProxyTrust {
  trustProxy: boolean
  /** Reverse proxies in front of this server, each appending to `X-Forwarded-For`. */
  trustedHops: number
}

/** The right-most entry of a comma-separated forwarding header: the one the nearest proxy set. */
function lastEntry(value: string | null): string | undefined {
  return value?.split(',').pop()?.trim() || undefined
}

/**
 * The request's own origin: from `Host` (never from an absolute-form request target, which a
 * client chooses freely), or from `X-Forwarded-Proto`/`-Host` when a reverse proxy is trusted.
 */
export function ownOrigin(request: Request, trust: ProxyTrust): string {
  const url = new URL(request.url)
  if (!trust.trustProxy) return url.origin
  const proto = lastEntry(request.headers.get('x-forwarded-proto'))
  const host = lastEntry(request.headers.get('x-forwarded-host'))
  return `${proto === 'https' || proto === 'http' ? proto : url.protocol.slice(0, -1)}://${host ?? url.host}`
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/
const IPV6 = /^(?=.*:)[0-9A-Fa-f:.]{2,45}$/

export function isIp(value: string): boolean {
  return IPV4.test(value) || (IPV6.test(value) && value.split('::').length <= 2)
}

/**
 * The end user's IP. With `trustProxy`, the entry of `X-Forwarded-For` that the outermost trusted
 * proxy appended (`trustedHops` from the right): entries further left are whatever the client
 * sent. Without it, the socket's peer. Undefined when it is not an IP address.
 */
export function clientIp(request: Request, context: RequestContext, trust: ProxyTrust): string | undefined {
  let candidate = context.clientIp
  if (trust.trustProxy) {
    const entries = (request.headers.get('x-forwarded-for') ?? '')
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean)
    candidate = entries.length >= trust.trustedHops ? entries[entries.length - trust.trustedHops] : undefined
  }
  candidate = candidate?.replace(/^::ffff:(?=\d+\.)/, '')
  return candidate && isIp(candidate) ? candidate : undefined
}
