// app/api/session/refresh/route.ts in a Next.js app (App Router).
import { createRefreshHandler } from 'session-keeper/server'

const handler = createRefreshHandler({
  secretKey: process.env.CLERK_SECRET_KEY!,
  publishableKey: process.env.NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY!,
  origin: process.env.APP_ORIGIN, // e.g. https://app.example.com
})

export const POST = (request: Request) => handler(request)
export const dynamic = 'force-dynamic'
