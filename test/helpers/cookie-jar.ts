/**
 * A browser's cookie store for one host, small enough to read: `Path` (default path and prefix
 * match), `Max-Age`/`Expires` on an injectable clock, deletion by `Max-Age=0`. `Domain` is
 * ignored (one host), `Secure` cookies are kept on http://127.0.0.1 as browsers keep them on
 * loopback, `HttpOnly` only matters to scripts, which this jar has none of.
 */
interface StoredCookie {
  name: string
  value: string
  path: string
  expiresAt: number | null
  httpOnly: boolean
}

export class CookieJar {
  readonly #cookies = new Map<string, StoredCookie>()

  constructor(readonly now: () => number = () => Date.now()) {}

  /** Takes the Set-Cookie headers of an answer to a request for `url`. */
  store(response: Response, url: URL): void {
    for (const directive of response.headers.getSetCookie()) this.apply(directive, url)
  }

  apply(directive: string, url: URL): void {
    const [pair = '', ...attributes] = directive.split(';')
    const eq = pair.indexOf('=')
    if (eq <= 0) return
    const name = pair.slice(0, eq).trim()
    const value = pair.slice(eq + 1).trim()
    let path = url.pathname.slice(0, Math.max(1, url.pathname.lastIndexOf('/'))) // RFC 6265 default-path
    let expiresAt: number | null = null
    let maxAgeSeen = false
    let httpOnly = false
    for (const attribute of attributes) {
      const [rawKey = '', ...rest] = attribute.split('=')
      const key = rawKey.trim().toLowerCase()
      const v = rest.join('=').trim()
      if (key === 'path' && v.startsWith('/')) path = v
      else if (key === 'max-age' && /^-?\d+$/.test(v)) {
        maxAgeSeen = true
        expiresAt = this.now() + Number(v) * 1000
      } else if (key === 'expires' && !maxAgeSeen && !Number.isNaN(Date.parse(v))) expiresAt = Date.parse(v)
      else if (key === 'httponly') httpOnly = true
    }
    const id = `${name}\u0000${path}`
    if (expiresAt !== null && expiresAt <= this.now()) this.#cookies.delete(id)
    else this.#cookies.set(id, { name, value, path, expiresAt, httpOnly })
  }

  /** The `Cookie` header a browser sends to `url`: longer paths first. */
  header(url: URL): string {
    return this.#live()
      .filter((c) => pathMatches(url.pathname, c.path))
      .sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`)
      .join('; ')
  }

  /** The value of `name` at path `/` (what `document.cookie` shows for a non-HttpOnly one). */
  get(name: string): string | undefined {
    return this.#live().find((c) => c.name === name && c.path === '/')?.value
  }

  /** Sets a cookie by hand (a tampered or tossed cookie); an empty value with `remove` deletes it. */
  set(name: string, value: string, path = '/'): void {
    this.#cookies.set(`${name}\u0000${path}`, { name, value, path, expiresAt: null, httpOnly: false })
  }

  remove(name: string, path = '/'): void {
    this.#cookies.delete(`${name}\u0000${path}`)
  }

  /** A copy: what a request already on its way carries while the original jar moves on. */
  clone(): CookieJar {
    const copy = new CookieJar(this.now)
    for (const c of this.#live()) copy.#cookies.set(`${c.name}\u0000${c.path}`, { ...c })
    return copy
  }

  names(): string[] {
    return this.#live().map((c) => c.name)
  }

  #live(): StoredCookie[] {
    const now = this.now()
    for (const [id, c] of this.#cookies) if (c.expiresAt !== null && c.expiresAt <= now) this.#cookies.delete(id)
    return [...this.#cookies.values()]
  }
}

function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true
  if (!requestPath.startsWith(cookiePath)) return false
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/'
}
