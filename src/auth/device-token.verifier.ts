import { Injectable } from '@nestjs/common';
import jwt from 'jsonwebtoken';
import { createPublicKey, createSecretKey, KeyObject } from 'node:crypto';
import { Clock } from '../common/clock';
import { ID, MAX_TOPICS_PER_SESSION, TOPIC_GRANT } from '../common/patterns';
import { AppConfig } from '../config/app-config';

export type AuthErrorCode = 'missing_token' | 'invalid_token' | 'token_expired';

export class DeviceAuthError extends Error {
  constructor(
    readonly code: AuthErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface DeviceClaims {
  userId: string;
  deviceId: string;
  platform?: string;
  topics: string[];
  /** When the token stops being valid (ms): its `exp`, or `iat` + DEVICE_TOKEN_MAX_AGE when that comes first. */
  expiresAt: number;
}

/**
 * How far in the future a token's `iat` and `nbf` may lie: the backend that minted it and the
 * gateway seldom agree on the time to the second, and a token refused for being 2 s "too new"
 * would fail at random. `exp` gets no such allowance: no token is accepted past its expiry.
 */
export const TOKEN_CLOCK_SKEW_MS = 30_000;

/**
 * Verifies device JWTs with the one algorithm the configured key allows (HS256 for a secret,
 * RS256 or ES256 for a public key), so `alg: none` and algorithm-confusion tokens are refused.
 */
@Injectable()
export class DeviceTokenVerifier {
  /**
   * The key as a KeyObject, made once: given a string, jsonwebtoken parses the key material on every
   * verify (for a secret it first tries, and fails, to read it as a PEM public key), which was about
   * a third of the CPU a handshake costs.
   */
  private readonly key: KeyObject;

  constructor(
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {
    this.key = config.jwt.kind === 'secret' ? createSecretKey(Buffer.from(config.jwt.secret)) : createPublicKey(config.jwt.publicKey);
  }

  verify(token: unknown): DeviceClaims {
    if (token === undefined || token === null || token === '') throw new DeviceAuthError('missing_token', 'auth.token is required');
    if (typeof token !== 'string') throw new DeviceAuthError('invalid_token', 'auth.token must be a string');
    const now = this.clock.now();
    let payload: jwt.JwtPayload;
    try {
      const decoded = jwt.verify(token, this.key, {
        algorithms: this.config.jwt.algorithms,
        clockTimestamp: Math.floor(now / 1000),
        // jsonwebtoken's clockTolerance would stretch exp as well: nbf is checked below with our own allowance.
        ignoreNotBefore: true,
      });
      if (typeof decoded === 'string') throw new DeviceAuthError('invalid_token', 'token payload must be a JSON object');
      payload = decoded;
    } catch (err) {
      if (err instanceof DeviceAuthError) throw err;
      if (err instanceof jwt.TokenExpiredError) throw new DeviceAuthError('token_expired', 'token has expired');
      throw new DeviceAuthError('invalid_token', (err as Error).message);
    }
    const { exp, ...claims } = readClaims(payload);
    return { ...claims, expiresAt: this.expiresAt(payload, exp, now) };
  }

  /** The token's effective expiry (ms), after the skew-tolerant nbf/iat checks and the max age. */
  private expiresAt(p: jwt.JwtPayload, exp: number, now: number): number {
    const invalid = (why: string) => new DeviceAuthError('invalid_token', why);
    const latest = now + TOKEN_CLOCK_SKEW_MS;
    if (p.nbf !== undefined && (typeof p.nbf !== 'number' || p.nbf * 1000 > latest)) throw invalid('token is not valid yet (nbf)');
    if (p.iat !== undefined && (typeof p.iat !== 'number' || p.iat * 1000 > latest)) throw invalid('claim iat is in the future');
    const maxAge = this.config.deviceTokenMaxAgeMs;
    // NumericDate may have a fraction; the protocol reports whole ms.
    const expiresAt = Math.floor(exp * 1000);
    if (maxAge === undefined) return expiresAt;
    if (typeof p.iat !== 'number') throw invalid('claim iat is required (DEVICE_TOKEN_MAX_AGE is set)');
    const ageEnd = Math.floor(p.iat * 1000) + maxAge;
    if (ageEnd <= now) throw new DeviceAuthError('token_expired', 'token is older than DEVICE_TOKEN_MAX_AGE');
    return Math.min(expiresAt, ageEnd);
  }
}

function readClaims(p: jwt.JwtPayload): Omit<DeviceClaims, 'expiresAt'> & { exp: number } {
  const invalid = (why: string) => new DeviceAuthError('invalid_token', why);
  if (typeof p.exp !== 'number') throw invalid('claim exp is required');
  if (!ID.test(p.sub)) throw invalid(`claim sub must be ${ID.describe}`);
  const deviceId: unknown = p.deviceId;
  if (!ID.test(deviceId)) throw invalid(`claim deviceId must be ${ID.describe}`);
  const platform: unknown = p.platform;
  if (platform !== undefined && (typeof platform !== 'string' || platform.length > 32)) {
    throw invalid('claim platform must be a string of at most 32 characters');
  }
  const topics: unknown = p.topics ?? [];
  if (!Array.isArray(topics) || topics.length > MAX_TOPICS_PER_SESSION || !topics.every((t) => TOPIC_GRANT.test(t))) {
    throw invalid(`claim topics must be a list of at most ${MAX_TOPICS_PER_SESSION} items, each ${TOPIC_GRANT.describe}`);
  }
  return { userId: p.sub, deviceId, platform, topics, exp: p.exp };
}
