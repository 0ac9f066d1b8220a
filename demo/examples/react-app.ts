// A React component tree using the hook (createElement so this file needs no JSX transform).
import { createElement } from 'react'
import { createSessionKeeper } from 'session-keeper'
import { SessionKeeperProvider, useSession } from 'session-keeper/react'

const keeper = createSessionKeeper({ endpoint: '/api/session/refresh' })

function Who() {
  const { status, userId, expiresAt } = useSession()
  if (status === 'signedOut') return createElement('a', { href: '/sign-in' }, 'Sign in')
  return createElement('span', null, `${userId ?? '…'} · token valid until ${expiresAt ? new Date(expiresAt).toLocaleTimeString() : '…'}`)
}

export const App = () => createElement(SessionKeeperProvider, { keeper }, createElement(Who))
