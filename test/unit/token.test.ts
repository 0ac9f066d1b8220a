import { describe, expect, it } from 'vitest'
import { decodeSessionToken, TokenError } from '../../src/index.js'
import { isNewer } from '../../src/core/token.js'
import { makeJwt, sessionJwt } from '../helpers/jwt.js'

describe('decodeSessionToken', () => {
  it('reads sid, sub, iat, exp and derives the lifetime from exp - iat', () => {
    const token = decodeSessionToken(makeJwt({ sid: 'sess_a', sub: 'user_a', iat: 1000, exp: 1090 }))
    expect(token).toMatchObject({ sessionId: 'sess_a', userId: 'user_a', issuedAt: 1000, expiresAt: 1090, lifetimeMs: 90_000 })
  })

  const bad: [string, unknown, RegExp][] = [
    ['a number', 42, /non-empty string/],
    ['an empty string', '', /non-empty string/],
    ['two segments', 'abc.def', /2 segments/],
    ['four segments', 'a.b.c.d', /4 segments/],
    ['non-base64url characters', 'a.b$.c', /base64url/],
    ['a payload that is not JSON', 'eyJhbGciOiJub25lIn0.bm90IGpzb24.c2ln', /JSON/],
    ['a JSON array payload', makeJwt([1, 2] as unknown as Record<string, unknown>), /object/],
    ['no exp', makeJwt({ sid: 's', iat: 1 }), /"exp"/],
    ['a string exp', makeJwt({ sid: 's', iat: 1, exp: '100' }), /"exp"/],
    ['no iat', makeJwt({ sid: 's', exp: 100 }), /"iat"/],
    ['exp before iat', makeJwt({ sid: 's', iat: 100, exp: 50 }), /not after/],
    ['no sid', makeJwt({ iat: 1, exp: 100 }), /"sid"/],
    ['a numeric sid', makeJwt({ sid: 7, iat: 1, exp: 100 }), /"sid"/],
    ['a huge string', 'a'.repeat(20_000), /longer than/],
  ]
  it.each(bad)('rejects %s with a TokenError (code token_malformed)', (_, input, message) => {
    let caught: unknown
    try {
      decodeSessionToken(input)
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(TokenError)
    expect((caught as TokenError).code).toBe('token_malformed')
    expect((caught as TokenError).message).toMatch(message)
  })
})

describe('isNewer', () => {
  const at = (ms: number, sid = 'sess_1') => decodeSessionToken(sessionJwt(ms, { sid }))
  it('never prefers an older token of the same session', () => {
    expect(isNewer(at(1_000_000), at(2_000_000))).toBe(false)
    expect(isNewer(at(2_000_000), at(1_000_000))).toBe(true)
    expect(isNewer(at(1_000_000), at(1_000_000))).toBe(false)
  })
  it('takes a token of another session as a switch unless it is older', () => {
    expect(isNewer(at(2_000_000, 'sess_2'), at(1_000_000))).toBe(true)
    expect(isNewer(at(1_000_000, 'sess_2'), at(2_000_000))).toBe(false)
  })
})
