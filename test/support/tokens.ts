import jwt from 'jsonwebtoken';

export const TEST_JWT_SECRET = 'test-secret-test-secret-test-secret-0123456789';
export const TEST_API_KEY = 'test-api-key-0123456789abcdef';

export interface TokenClaims {
  sub?: string;
  deviceId?: string;
  platform?: string;
  topics?: string[];
  /** Seconds since the epoch; with `exp`, pass no `expiresIn`. */
  exp?: number;
  iat?: number;
  nbf?: number;
}

/**
 * A signed device token; `expiresIn` counts from the real time. It carries `iat` only when the
 * claims name one: suites run the gateway on a FakeClock that stands still while real time goes
 * on, and a real-time `iat` would drift past the gateway's 30 s skew allowance in a long run.
 */
export function deviceToken(claims: TokenClaims, options: jwt.SignOptions = { expiresIn: '1h' }, secret = TEST_JWT_SECRET): string {
  return jwt.sign(claims, secret, { algorithm: 'HS256', noTimestamp: claims.iat === undefined, ...options });
}
