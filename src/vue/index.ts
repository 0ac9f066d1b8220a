import {
  computed,
  getCurrentScope,
  inject,
  onScopeDispose,
  readonly,
  shallowRef,
  type App,
  type ComputedRef,
  type DeepReadonly,
  type InjectionKey,
  type Ref,
} from 'vue'
import type { SessionKeeper } from '../agent/createSessionKeeper.js'
import type { SessionState, SessionStatus } from '../agent/state.js'

export const sessionKeeperKey: InjectionKey<SessionKeeper> = Symbol('session-keeper')

export interface UseSession {
  /** The whole state, replaced on every change. */
  state: DeepReadonly<Ref<SessionState>>
  status: ComputedRef<SessionStatus>
  token: ComputedRef<string | null>
  expiresAt: ComputedRef<number | null>
  error: ComputedRef<SessionState['error']>
  keeper: SessionKeeper
}

/**
 * Read-only refs over the session state. The subscription ends with the current effect scope
 * (the component, or an `effectScope()`). Pass a keeper, or install the plugin.
 */
export function useSession(keeper?: SessionKeeper): UseSession {
  const target = keeper ?? inject(sessionKeeperKey, null)
  if (!target) throw new Error('useSession: pass a keeper or install the session-keeper plugin')
  const state = shallowRef(target.getState())
  const unsubscribe = target.subscribe((next) => {
    state.value = next
  })
  if (getCurrentScope()) onScopeDispose(unsubscribe)
  return {
    state: readonly(state) as DeepReadonly<Ref<SessionState>>,
    status: computed(() => state.value.status),
    token: computed(() => state.value.token),
    expiresAt: computed(() => state.value.expiresAt),
    error: computed(() => state.value.error),
    keeper: target,
  }
}

export interface SessionKeeperPluginOptions {
  keeper: SessionKeeper
  /** Start now and stop when the app unmounts. @default true */
  autoStart?: boolean
}

/** `app.use(createSessionKeeperPlugin({ keeper }))`: provides the keeper to `useSession()`. */
export function createSessionKeeperPlugin({ keeper, autoStart = true }: SessionKeeperPluginOptions) {
  return {
    install(app: App) {
      app.provide(sessionKeeperKey, keeper)
      if (!autoStart) return
      const stop = keeper.start()
      app.onUnmount(stop)
    },
  }
}

export type { SessionKeeper, SessionState }
