import { randomId } from './jwt.js'

/**
 * A browser as Clerk's Frontend API knows it: named by the Frontend API's own HttpOnly `__client`
 * cookie, and on development instances by its dev-browser token (`__clerk_db_jwt`), because the
 * Frontend API of a development instance is on another site and gets no cookie of its own.
 */
export interface Client {
  /** The value of the `__client` cookie. */
  readonly id: string
  /** Development instances: the `__clerk_db_jwt` that names this client; else null. */
  readonly devBrowser: string | null
  /** The session this browser is signed in to, or null. */
  sessionId: string | null
  /** When the client last changed (sign-in, sign-out), in seconds: what `__client_uat` says. */
  updatedAt: number
}

/** At most this many clients are kept; the oldest is forgotten first (as after a cookie expiry). */
const MAX_CLIENTS = 10_000

export function createClients(now: () => number) {
  const byId = new Map<string, Client>()
  const byDevBrowser = new Map<string, Client>()

  return {
    create({ devBrowser }: { devBrowser: boolean }): Client {
      if (byId.size >= MAX_CLIENTS) {
        const [oldest] = byId.values()
        if (oldest) {
          byId.delete(oldest.id)
          if (oldest.devBrowser) byDevBrowser.delete(oldest.devBrowser)
        }
      }
      const client: Client = {
        id: randomId('client_'),
        devBrowser: devBrowser ? randomId('dvb_', 16) : null,
        sessionId: null,
        updatedAt: Math.floor(now() / 1000),
      }
      byId.set(client.id, client)
      if (client.devBrowser) byDevBrowser.set(client.devBrowser, client)
      return client
    },
    byCookie(value: string | undefined): Client | null {
      return (value && byId.get(value)) || null
    },
    byDevBrowser(token: string | undefined): Client | null {
      return (token && byDevBrowser.get(token)) || null
    },
    /** The client now signed in to `sessionId` (the session it had is replaced, as in single-session mode). */
    signIn(client: Client, sessionId: string): void {
      client.sessionId = sessionId
      client.updatedAt = Math.floor(now() / 1000)
    },
    signOut(client: Client): void {
      client.sessionId = null
      client.updatedAt = Math.floor(now() / 1000)
    },
  }
}

export type Clients = ReturnType<typeof createClients>
