import { launchChromiumEngine } from './chromium.js'
import { launchFirefoxEngine } from './firefox.js'
import type { Engine, EngineName } from './types.js'
import { launchWebKitEngine } from './webkit.js'

export type { Engine, EngineName, Placement, Session, SessionOptions, Tab } from './types.js'

export const ALL_ENGINES: readonly EngineName[] = ['chromium', 'firefox', 'webkit']

/**
 * The engines to run: `ENGINES=firefox,webkit` (or `ENGINE=…`) narrows them, for a quick run of
 * one file in one engine; by default all three.
 */
export function selectedEngines(env: NodeJS.ProcessEnv = process.env): EngineName[] {
  const wanted = (env.ENGINES ?? env.ENGINE ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  if (wanted.length === 0) return [...ALL_ENGINES]
  for (const name of wanted) {
    if (!ALL_ENGINES.includes(name as EngineName)) throw new Error(`ENGINES: unknown engine "${name}" (${ALL_ENGINES.join(', ')})`)
  }
  return wanted as EngineName[]
}

export function launchEngine(name: EngineName): Promise<Engine> {
  switch (name) {
    case 'chromium':
      return launchChromiumEngine()
    case 'firefox':
      return launchFirefoxEngine()
    case 'webkit':
      return launchWebKitEngine()
  }
}
