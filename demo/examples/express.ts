// An Express 5 app. Mount the proxy before any body parser: it reads the body itself.
import express from 'express'
import { createRefreshHandler, toNodeHandler } from 'session-keeper/server'

const refresh = createRefreshHandler({
  secretKey: process.env.CLERK_SECRET_KEY!,
  publishableKey: process.env.CLERK_PUBLISHABLE_KEY!,
  origin: process.env.APP_ORIGIN, // e.g. https://app.example.com: never trust the Host header alone
})

export const app = express()
app.set('trust proxy', false)
app.post('/api/session/refresh', toNodeHandler(refresh))
