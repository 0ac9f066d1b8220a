import type { IncomingMessage, ServerResponse } from 'node:http'
import type { RefreshHandler } from './createRefreshHandler.js'

export interface NodeHandlerOptions {
  /** Largest body read from the socket; the handler applies its own limit too. @default 8_192 */
  maxBodyBytes?: number
}

/**
 * Adapts a fetch-standard handler to `node:http`, Express, Connect and Vite middleware. The
 * body is read with a size limit (413 past it), a client that disconnects aborts the request's
 * signal, and every Set-Cookie is passed on.
 */
export function toNodeHandler(
  handler: RefreshHandler | ((request: Request) => Promise<Response>),
  options: NodeHandlerOptions = {},
) {
  const limit = options.maxBodyBytes ?? 8_192
  return async (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): Promise<void> => {
    try {
      const controller = new AbortController()
      res.on('close', () => {
        if (!res.writableFinished) controller.abort()
      })
      const body = await readLimited(req, limit)
      if (body === null) {
        res.writeHead(413, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'close' })
        res.end(JSON.stringify({ error: { code: 'body_too_large', message: `The body must not exceed ${limit} bytes` } }))
        return
      }
      const encrypted = (req.socket as { encrypted?: boolean }).encrypted === true
      const url = new URL(req.originalUrl ?? req.url ?? '/', `${encrypted ? 'https' : 'http'}://${req.headers.host ?? 'localhost'}`)
      const headers = new Headers()
      for (const [name, value] of Object.entries(req.headers)) {
        if (value === undefined) continue
        for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v)
      }
      const method = req.method ?? 'GET'
      const request = new Request(url, {
        method,
        headers,
        body: method === 'GET' || method === 'HEAD' ? undefined : new Uint8Array(body),
        signal: controller.signal,
      })
      const response = await handler(request, { clientIp: req.socket.remoteAddress })
      if (res.destroyed) return
      if (response.type === 'error') return void res.destroy() // Response.error(): drop the connection
      const outHeaders: Record<string, string | string[]> = {}
      response.headers.forEach((value, name) => {
        if (name !== 'set-cookie') outHeaders[name] = value
      })
      const setCookies = response.headers.getSetCookie()
      if (setCookies.length) outHeaders['set-cookie'] = setCookies
      res.writeHead(response.status, outHeaders)
      res.end(Buffer.from(await response.arrayBuffer()))
    } catch (error) {
      if (error instanceof ClientGone) return void res.destroy()
      if (next) return next(error)
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-store' })
      res.end()
    }
  }
}

declare module 'node:http' {
  interface IncomingMessage {
    /** Set by Express/Connect when mounted under a path. */
    originalUrl?: string
  }
}

class ClientGone extends Error {}

/** The body, or null when it is longer than `limit` (the rest is drained, not buffered). */
function readLimited(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let over = false
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) over = true
      else chunks.push(chunk)
    })
    req.on('end', () => resolve(over ? null : Buffer.concat(chunks)))
    req.on('error', reject)
    req.on('aborted', () => reject(new ClientGone()))
  })
}
