import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { createRefreshHandler, toNodeHandler } from '../../src/server/index.js'
import { createClerkEmulator, type ClerkEmulatorOptions } from '../../src/testing/index.js'
import { close, listen } from './servers.js'

/**
 * A tiny app on 127.0.0.1 for real-browser tests: `/login` sets the cookies Clerk's handshake
 * would, `/` is a bare HTML page with the <script> build, `/api/session/refresh` is the proxy in
 * front of the emulator. Every refresh request the tabs send is recorded with its answer.
 * `/junk` is a page of the same origin without the library (for hostile-script tests).
 */
export async function startApp(
  emulatorOptions: ClerkEmulatorOptions = {},
  pageOptions: { dataset?: Record<string, string>; after?: string } = {},
) {
  const clerk = createClerkEmulator({ secureCookies: false, ...emulatorOptions })
  const handler = createRefreshHandler({
    secretKey: clerk.secretKey,
    publishableKey: clerk.publishableKey,
    apiUrl: 'http://localhost', // answered in-process by `fetch`
    fetch: clerk.fetch,
  })
  const requests: { at: number; token: string; status: number; code?: string }[] = []
  const proxy = toNodeHandler(async (request, context) => {
    const body = await request
      .clone()
      .json()
      .catch(() => ({}))
    const entry: (typeof requests)[number] = { at: Date.now(), token: body.expired_token, status: 0 }
    requests.push(entry)
    const response = await handler(request, context)
    entry.status = response.status
    if (!response.ok)
      entry.code = (
        await response
          .clone()
          .json()
          .catch(() => ({}))
      )?.error?.code
    return response
  })
  const iife = () => readFileSync(new URL('../../dist/session-keeper.iife.js', import.meta.url))
  const attributes = Object.entries({ endpoint: '/api/session/refresh', ...pageOptions.dataset })
    .map(([k, v]) => `data-${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}="${v}"`)
    .join(' ')

  let origin = ''
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://app')
    if (url.pathname === '/api/session/refresh') return proxy(req, res)
    if (url.pathname === '/login') {
      const session = clerk.createSession({ userId: url.searchParams.get('user') ?? 'user_browser', origin })
      res.writeHead(302, { Location: '/', 'Set-Cookie': session.cookies })
      return res.end()
    }
    if (url.pathname === '/session-keeper.iife.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript' })
      return res.end(iife())
    }
    if (url.pathname === '/junk') {
      res.writeHead(200, { 'Content-Type': 'text/html' })
      return res.end('<!doctype html><title>another page of the origin</title><p>no library here</p>')
    }
    if (url.pathname === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html' })
      return res.end(
        `<!doctype html><title>bare page</title><script src="/session-keeper.iife.js" ${attributes}></script>${pageOptions.after ?? ''}<p>bare</p>`,
      )
    }
    res.writeHead(404).end()
  })
  origin = await listen(server)
  return { clerk, origin, requests, close: () => close(server) }
}

export type App = Awaited<ReturnType<typeof startApp>>
