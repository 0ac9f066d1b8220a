// A Hono app (Node, Bun, Deno, Cloudflare Workers).
import { Hono } from 'hono'
import { createRefreshHandler } from 'session-keeper/server'

const refresh = createRefreshHandler({
  secretKey: process.env.CLERK_SECRET_KEY!,
  publishableKey: process.env.CLERK_PUBLISHABLE_KEY!,
  trustProxy: process.env.BEHIND_PROXY === '1',
})

export const app = new Hono()
app.post('/api/session/refresh', (c) => refresh(c.req.raw))
