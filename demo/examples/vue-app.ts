// A Vue 3 app using the plugin and the composable.
import { createApp, defineComponent, h } from 'vue'
import { createSessionKeeper } from 'session-keeper'
import { createSessionKeeperPlugin, useSession } from 'session-keeper/vue'

const keeper = createSessionKeeper({ endpoint: '/api/session/refresh' })

const Who = defineComponent({
  setup() {
    const { status, state } = useSession()
    return () => h('span', status.value === 'signedOut' ? 'signed out' : (state.value.userId ?? '…'))
  },
})

export const mount = (el: Element) => createApp(Who).use(createSessionKeeperPlugin({ keeper })).mount(el)
