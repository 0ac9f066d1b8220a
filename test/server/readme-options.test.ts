// @vitest-environment node
/**
 * The README's "Proxy options" table documents exactly the options of `RefreshHandlerOptions`
 * (`OPTION_NAMES` is kept in step with the interface by the type checker), and quotes the
 * defaults of `DEFAULTS`, the one table the handler applies.
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { OPTION_NAMES } from '../../src/server/options.js'
import { DEFAULTS } from '../../src/server/resolveOptions.js'

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')

/** The rows of the table under `### Proxy options`: option name → its default cell. */
function optionsTable(): Map<string, string> {
  const section = readme.split(/^### Proxy options$/m)[1]?.split(/^#{2,3} /m)[0] ?? ''
  const rows = new Map<string, string>()
  for (const line of section.split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim())
    const name = /^`(\w+)`$/.exec(cells[1] ?? '')?.[1]
    if (name) rows.set(name, cells[2] ?? '')
  }
  return rows
}

/** The numbers, strings and booleans inside a default, as the README writes them (`5_000`). */
function leaves(value: unknown): string[] {
  if (typeof value === 'number') return [value >= 1_000 ? value.toLocaleString('en-US').replaceAll(',', '_') : String(value)]
  if (typeof value === 'string' || typeof value === 'boolean') return [String(value)]
  if (Array.isArray(value) || typeof value !== 'object' || value === null) return []
  return Object.values(value).flatMap(leaves)
}

describe('README: proxy options', () => {
  const table = optionsTable()

  it('lists every option of RefreshHandlerOptions, and no other', () => {
    expect(table.size).toBeGreaterThan(0)
    expect([...table.keys()].sort()).toEqual(Object.keys(OPTION_NAMES).sort())
  })

  it.each(Object.entries(DEFAULTS))('quotes the default of %s', (name, value) => {
    const cell = table.get(name)
    expect(cell, `README has no row for ${name}`).toBeDefined()
    for (const leaf of leaves(value)) expect(cell).toContain(leaf)
  })
})
