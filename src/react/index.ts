import { createContext, createElement, useContext, useEffect, useSyncExternalStore, type ReactNode } from 'react'
import type { SessionKeeper } from '../agent/createSessionKeeper.js'
import { LOADING_STATE, type SessionState } from '../agent/state.js'

const KeeperContext = createContext<SessionKeeper | null>(null)

export interface SessionKeeperProviderProps {
  keeper: SessionKeeper
  /**
   * Start the keeper when the provider mounts and stop it when it unmounts. Under StrictMode's
   * double mount this is start, stop, start: never two running at once, no leaked listener.
   * @default true
   */
  autoStart?: boolean
  children?: ReactNode
}

/** Makes a keeper available to `useSession()` and `useSessionKeeper()` below it. */
export function SessionKeeperProvider({ keeper, autoStart = true, children }: SessionKeeperProviderProps) {
  useEffect(() => (autoStart ? keeper.start() : undefined), [keeper, autoStart])
  return createElement(KeeperContext.Provider, { value: keeper }, children)
}

/** The keeper from the nearest provider; throws when there is none. */
export function useSessionKeeper(): SessionKeeper {
  const keeper = useContext(KeeperContext)
  if (!keeper) throw new Error('useSessionKeeper: no <SessionKeeperProvider> above this component')
  return keeper
}

const serverSnapshot = () => LOADING_STATE

/**
 * The session state, re-rendering on every change (`useSyncExternalStore`). Pass a keeper, or
 * use it under a `SessionKeeperProvider`. Server rendering returns the `loading` state and
 * touches no browser global.
 */
export function useSession(keeper?: SessionKeeper): SessionState {
  const fromContext = useContext(KeeperContext)
  const target = keeper ?? fromContext
  if (!target) throw new Error('useSession: pass a keeper or render inside <SessionKeeperProvider>')
  return useSyncExternalStore(target.subscribe, target.getState, serverSnapshot)
}

export { LOADING_STATE }
export type { SessionKeeper, SessionState }
