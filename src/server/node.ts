import type { IncomingMessage, ServerResponse } from 'node:http'
import type { RefreshHandler } from './createRefreshHandler.js'
import { BASE_HEADERS, errorBody } from './errors.js'
import { DEFAULTS } from './resolveOptions.js'
import { bodyTooLarge } from './validate.js'

export interface NodeHandlerOptions {
  /** Largest body taken from the socket; a larger `Content-Length` is refused unread. @default 8_192 */
  maxBodyBytes?: number
}

declare module 'node:http' {
  interface IncomingMessage {
    /** Set by Express/Connect when mounted under a path. */
    originalUrl?: string
    /** Set by body parsers such as `express.json()`, which have already read the stream. */
    body?: unknown
  }
}

/**
 * Adapts a fetch-standard handler to `node:http`, Express, Connect and Vite middleware.
 *
 * - The body is streamed to the handler, which checks method, origin and content type before it
 *   reads a byte (and reads under its own size limit and deadline). A `Content-Length` over the
 *   limit is refused at once; a connection whose body was not read to the end is closed after
 *   the answer, so an endless or dripping body costs nothing more.
 * - A body already parsed by `express.json()` (or any parser that sets `req.body`) is used as is.
 * - The URL is built from `Host` and the path alone: an absolute-form request target
 *   (`POST http://evil.example/…`) never decides the request's origin.
 * - A client that disconnects aborts the request's signal; every Set-Cookie is passed on.
 */
export function toNodeHandler(handler: RefreshHandler | ((request: Request) => Promise<Response>), options: NodeHandlerOptions = {}) {
  const limit = options.maxBodyBytes ?? DEFAULTS.maxBodyBytes
  return async (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): Promise<void> => {
    try {
      const declared = Number(req.headers['content-length'] ?? 0)
      if (declared > limit) {
        return send(req, res, 413, errorBody(bodyTooLarge(limit, `Content-Length is ${declared}`)))
      }
      const controller = new AbortController()
      res.on('close', () => {
        if (!res.writableFinished) controller.abort()
      })
      const headers = new Headers()
      for (const [name, value] of Object.entries(req.headers)) {
        if (value === undefined) continue
        for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v)
      }
      const method = req.method ?? 'GET'
      const hasBody = method !== 'GET' && method !== 'HEAD'
      const request = new Request(requestUrl(req), {
        method,
        headers,
        body: hasBody ? bodyOf(req, limit) : undefined,
        signal: controller.signal,
        ...(hasBody ? { duplex: 'half' } : {}),
      } as RequestInit)
      const response = await handler(request, { clientIp: req.socket.remoteAddress })
      if (res.destroyed) return
      if (response.type === 'error') return void res.destroy() // Response.error(): drop the connection
      const outHeaders: Record<string, string | string[]> = {}
      response.headers.forEach((value, name) => {
        if (name !== 'set-cookie') outHeaders[name] = value
      })
      const setCookies = response.headers.getSetCookie()
      if (setCookies.length) outHeaders['set-cookie'] = setCookies
      send(req, res, response.status, Buffer.from(await response.arrayBuffer()), outHeaders)
    } catch (error) {
      if (next) return next(error)
      if (!res.headersSent) send(req, res, 500, errorBody({ code: 'internal_error', message: 'The refresh failed in the proxy' }))
      else res.destroy()
    }
  }
}

/** Writes the answer; a request whose body was not read to the end loses its connection after it. */
function send(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  body: string | Buffer,
  headers: Record<string, string | string[]> = { ...BASE_HEADERS },
): void {
  const unread = !req.readableEnded && req.body === undefined
  if (unread) headers = { ...headers, connection: 'close' }
  res.writeHead(status, headers)
  res.end(body, () => {
    if (unread) req.socket.destroy()
  })
}

function requestUrl(req: IncomingMessage): URL {
  const encrypted = (req.socket as { encrypted?: boolean }).encrypted === true
  const base = `${encrypted ? 'https' : 'http'}://${req.headers.host ?? 'localhost'}`
  let target = req.originalUrl ?? req.url ?? '/'
  if (!target.startsWith('/')) {
    try {
      const absolute = new URL(target)
      target = absolute.pathname + absolute.search
    } catch {
      target = '/'
    }
  }
  try {
    return new URL(target, base)
  } catch {
    return new URL(target, 'http://localhost')
  }
}

/** The body as a stream read on demand, or what a body parser already made of it. */
function bodyOf(req: IncomingMessage, limit: number): BodyInit | null {
  if (req.readableEnded || req.body !== undefined) {
    const parsed = req.body
    if (typeof parsed === 'string' || parsed instanceof Uint8Array) return parsed as string
    if (parsed !== undefined && parsed !== null && typeof parsed === 'object') return JSON.stringify(parsed)
    return null
  }
  let size = 0
  let open = true
  return new ReadableStream<Uint8Array>({
    start(controller) {
      const finish = (error?: Error) => {
        if (!open) return
        open = false
        req.pause()
        if (error) controller.error(error)
        else controller.close()
      }
      req.on('data', (chunk: Buffer) => {
        if (!open) return
        size += chunk.length
        // One byte past the limit is enough for the reader to refuse it; the rest is never read.
        const keep = size > limit ? chunk.subarray(0, limit + 1 - (size - chunk.length)) : chunk
        controller.enqueue(new Uint8Array(keep))
        if (size > limit) finish()
        else if ((controller.desiredSize ?? 0) <= 0) req.pause()
      })
      req.on('end', () => finish())
      req.on('error', (error) => finish(error))
      req.on('aborted', () => finish(new Error('client went away')))
    },
    pull() {
      req.resume()
    },
    cancel() {
      open = false
      req.pause()
    },
  })
}
