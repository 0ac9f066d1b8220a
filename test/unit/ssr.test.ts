// @vitest-environment node
import { describe, expect, it } from 'vitest'

describe('server-side rendering', () => {
  it('imports every entry point and renders without a browser global', async () => {
    expect(typeof window).toBe('undefined')
    const agent = await import('../../src/index.js')
    const react = await import('../../src/react/index.js')
    await import('../../src/vue/index.js')
    await import('../../src/server/index.js')
    await import('../../src/testing/index.js')
    const { createElement } = await import('react')
    const { renderToString } = await import('react-dom/server')
    const keeper = agent.createSessionKeeper({ endpoint: '/api/session/refresh', channel: () => null })
    expect(keeper.getState().status).toBe('loading')
    const html = renderToString(
      createElement(
        react.SessionKeeperProvider,
        { keeper },
        createElement(function Status() {
          return createElement('p', null, react.useSession().status)
        }),
      ),
    )
    expect(html).toBe('<p>loading</p>')
  })
})
