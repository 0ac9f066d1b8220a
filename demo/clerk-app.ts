import type { IncomingMessage, ServerResponse } from 'node:http'
import { clerkMiddleware, getAuth } from '@clerk/express'
import express from 'express'
import type { Connect } from 'vite'
import type { ClerkEmulator } from '../src/testing/index.js'

/** What `GET /api/me` answers: Clerk's middleware's verdict on the request. */
export interface MeAnswer {
  signedIn: boolean
  userId?: string
  sessionId?: string
  /** The middleware's `x-clerk-auth-reason` (why it is signed out), or null. */
  reason: string | null
  /** The middleware refreshed the token itself on this request (its answer sets `__session`). */
  refreshedByMiddleware: boolean
}

/** The paths Clerk's middleware stands in front of: the page and the protected API. */
const PROTECTED = new Set(['/', '/index.html', '/api/me'])

/**
 * An Express 5 app with Clerk's own `clerkMiddleware()` (`@clerk/express`) in front of the page
 * (Vite then serves index.html) and of `GET /api/me`, which answers from `getAuth(req)`. The
 * Frontend API is at `/__clerk` on the page's origin (`proxyUrl`), the Backend API at `apiUrl`.
 */
export function createClerkApp(clerk: ClerkEmulator, apiUrl: string): Connect.NextHandleFunction {
  // Clerk's middleware makes its own Backend API calls (its refresh, the handshake payload) with
  // CLERK_SECRET_KEY from the environment: its `secretKey` option only reaches token
  // verification. Telemetry off: nothing leaves 127.0.0.1.
  process.env.CLERK_SECRET_KEY = clerk.secretKey
  process.env.CLERK_TELEMETRY_DISABLED = '1'
  const auth = clerkMiddleware({ publishableKey: clerk.publishableKey, secretKey: clerk.secretKey, apiUrl, proxyUrl: '/__clerk' })

  const app = express()
  app.disable('x-powered-by')
  app.set('etag', false)
  // The page: Clerk's middleware may answer with its handshake redirect; otherwise on to Vite.
  app.get(['/', '/index.html'], auth, (_req, _res, next) => next())
  app.get('/api/me', auth, (req, res) => {
    const { userId, sessionId } = getAuth(req)
    const reason = res.getHeader('x-clerk-auth-reason')
    const cookies = res.getHeader('set-cookie')
    const setCookies = Array.isArray(cookies) ? cookies : typeof cookies === 'string' ? [cookies] : []
    const answer: MeAnswer = {
      signedIn: userId !== null,
      ...(userId ? { userId, sessionId: sessionId ?? undefined } : {}),
      reason: typeof reason === 'string' ? reason : null,
      refreshedByMiddleware: setCookies.some((c) => c.startsWith('__session=')),
    }
    res.set('Cache-Control', 'no-store')
    res.status(userId ? 200 : 401).json(answer)
  })

  return (req: IncomingMessage, res: ServerResponse, next: Connect.NextFunction) => {
    const path = (req.url ?? '/').split('?')[0]!
    if (!PROTECTED.has(path)) return next()
    app(req as express.Request, res as express.Response, next)
  }
}
