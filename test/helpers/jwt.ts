/** Builds an unsigned JWT with the given claims; the agent decodes, it never verifies. */
export function makeJwt(claims: Record<string, unknown>): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
  return `${encode({ alg: 'RS256', typ: 'JWT' })}.${encode(claims)}.c2lnbmF0dXJl`
}

/** A JWT's payload, decoded (never verified). */
export function claimsOf(jwt: string): Record<string, any> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString())
}

/** A Clerk-shaped session token issued at `nowMs` on the issuer's clock. */
export function sessionJwt(
  nowMs: number,
  { sid = 'sess_1', lifetimeS = 60, sub = 'user_1', jti = undefined as string | undefined } = {},
): string {
  const iat = Math.floor(nowMs / 1000)
  return makeJwt({
    sid,
    sub,
    iat,
    nbf: iat - 10,
    exp: iat + lifetimeS,
    iss: 'https://clerk.test',
    azp: 'http://localhost',
    ...(jti ? { jti } : {}),
  })
}
