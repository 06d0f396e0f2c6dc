import jwt from 'jsonwebtoken';
import { generateKeyPairSync } from 'node:crypto';
import { FakeClock } from '../../test/support/fake-clock';
import { loadConfig } from '../config/app-config';
import { DeviceTokenVerifier } from './device-token.verifier';

const SECRET = 's'.repeat(40);
const claims = { sub: 'user-1', deviceId: 'phone-1', platform: 'ios', topics: ['news', 'sport.*'] };

describe('DeviceTokenVerifier', () => {
  const clock = new FakeClock(Date.now());
  const verifier = new DeviceTokenVerifier(loadConfig({ API_KEYS: 'k'.repeat(16), DEVICE_JWT_SECRET: SECRET }), clock);
  const code = (token: unknown) => {
    try {
      verifier.verify(token);
      return 'ok';
    } catch (err) {
      return (err as { code: string }).code;
    }
  };

  it('accepts a valid HS256 token and reads its claims', () => {
    const token = jwt.sign(claims, SECRET, { algorithm: 'HS256', expiresIn: 60 });
    expect(verifier.verify(token)).toMatchObject({ userId: 'user-1', deviceId: 'phone-1', platform: 'ios', topics: ['news', 'sport.*'] });
  });

  it('tells missing, invalid and expired tokens apart', () => {
    expect(code(undefined)).toBe('missing_token');
    expect(code('')).toBe('missing_token');
    expect(code(42)).toBe('invalid_token');
    expect(code('not.a.jwt')).toBe('invalid_token');
    expect(code(jwt.sign(claims, 'w'.repeat(40), { algorithm: 'HS256', expiresIn: 60 }))).toBe('invalid_token');
    expect(code(jwt.sign(claims, SECRET, { algorithm: 'HS256', expiresIn: 60 }).slice(0, -2))).toBe('invalid_token');
    const expired = jwt.sign({ ...claims, exp: Math.floor(clock.now() / 1000) - 1 }, SECRET, { algorithm: 'HS256' });
    expect(code(expired)).toBe('token_expired');
  });

  it('requires sub, deviceId and exp, and safe ids', () => {
    expect(code(jwt.sign({ deviceId: 'd' }, SECRET, { algorithm: 'HS256', expiresIn: 60 }))).toBe('invalid_token');
    expect(code(jwt.sign({ sub: 'u' }, SECRET, { algorithm: 'HS256', expiresIn: 60 }))).toBe('invalid_token');
    expect(code(jwt.sign({ sub: 'u', deviceId: 'd' }, SECRET, { algorithm: 'HS256' }))).toBe('invalid_token');
    expect(code(jwt.sign({ sub: 'u', deviceId: 'a b' }, SECRET, { algorithm: 'HS256', expiresIn: 60 }))).toBe('invalid_token');
    expect(code(jwt.sign({ sub: 'u', deviceId: 'd', topics: 'news' }, SECRET, { algorithm: 'HS256', expiresIn: 60 }))).toBe('invalid_token');
  });

  it('refuses alg none and algorithms other than the pinned one', () => {
    const none = jwt.sign(claims, '', { algorithm: 'none', expiresIn: 60 });
    expect(code(none)).toBe('invalid_token');
    expect(code(jwt.sign(claims, SECRET, { algorithm: 'HS512', expiresIn: 60 }))).toBe('invalid_token');
  });

  it('verifies RS256 and ES256 with a public key, refusing HS256 signed with that key (algorithm confusion)', () => {
    for (const [type, alg] of [
      ['rsa', 'RS256'],
      ['ec', 'ES256'],
    ] as const) {
      const pair =
        type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const publicPem = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
      const v = new DeviceTokenVerifier(loadConfig({ API_KEYS: 'k'.repeat(16), DEVICE_JWT_PUBLIC_KEY: publicPem }), clock);
      expect(v.verify(jwt.sign(claims, pair.privateKey, { algorithm: alg, expiresIn: 60 })).deviceId).toBe('phone-1');
      const confused = jwt.sign(claims, SECRET, { algorithm: 'HS256', expiresIn: 60 });
      expect(() => v.verify(confused)).toThrow(expect.objectContaining({ code: 'invalid_token' }));
    }
  });
});
