import { readFileSync } from 'node:fs'
import { describe, expect, expectTypeOf, it } from 'vitest'
import {
  NotStartedError,
  RefreshError,
  TokenError,
  TokenUnavailableError,
  type AnySessionKeeperError,
  type SessionErrorCode,
  type SessionState,
} from '../../src/index.js'
import { ERROR_CODES } from '../../src/errors/codes.js'
import { isRefreshErrorCode } from '../../src/errors/RefreshError.js'

/** What an app writes; `npm run typecheck` fails if a case does not narrow to its class. */
function describeError(error: AnySessionKeeperError): string {
  switch (error.code) {
    case 'refresh_rate_limited':
    case 'refresh_unavailable':
      return `retry in ${error.retryAfterMs ?? 0} ms (HTTP ${error.status})` // RefreshError fields
    case 'recovery_required':
      return `recovery: ${error.reason}`
    case 'token_malformed':
      expectTypeOf(error).toEqualTypeOf<TokenError>()
      return 'bad token'
    case 'token_unavailable':
      expectTypeOf(error).toEqualTypeOf<TokenUnavailableError>()
      return `no token: ${String(error.cause)}`
    case 'not_started':
      expectTypeOf(error).toEqualTypeOf<NotStartedError>()
      return 'start() first'
    default:
      expectTypeOf(error).toEqualTypeOf<RefreshError>()
      return error.code
  }
}

describe('error codes', () => {
  it('narrow to the class in a switch, from SessionState.error too', () => {
    expectTypeOf<SessionState['error']>().toEqualTypeOf<AnySessionKeeperError | null>()
    expectTypeOf<AnySessionKeeperError['code']>().toEqualTypeOf<SessionErrorCode>()
    expect(describeError(new RefreshError('refresh_rate_limited', 'x', { retryAfterMs: 5, status: 429 }))).toBe('retry in 5 ms (HTTP 429)')
    expect(describeError(new TokenError('x'))).toBe('bad token')
    expect(describeError(new NotStartedError('x'))).toBe('start() first')
  })

  it('come from one list, and every class carries one of its own', () => {
    const all = Object.values(ERROR_CODES).flat()
    expect(new Set(all).size).toBe(all.length)
    expect(ERROR_CODES.token).toContain(new TokenError('x').code)
    expect(ERROR_CODES.tokenUnavailable).toContain(new TokenUnavailableError('x').code)
    expect(ERROR_CODES.notStarted).toContain(new NotStartedError('x').code)
    for (const code of ERROR_CODES.refresh) expect(isRefreshErrorCode(code)).toBe(true)
    for (const code of [...ERROR_CODES.token, ...ERROR_CODES.tokenUnavailable, 'refresh_revoked'])
      expect(isRefreshErrorCode(code)).toBe(false)
  })

  it('are each documented in the README', () => {
    const readme = readFileSync('README.md', 'utf8') // vitest runs from the package root
    const undocumented = Object.values(ERROR_CODES)
      .flat()
      .filter((code) => !readme.includes(`\`${code}\``))
    expect(undocumented).toEqual([])
  })
})
