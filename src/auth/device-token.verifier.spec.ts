import jwt from 'jsonwebtoken';
import { generateKeyPairSync } from 'node:crypto';
import { FakeClock } from '../../test/support/fake-clock';
import { loadConfig } from '../config/app-config';
import { DeviceTokenVerifier, TOKEN_CLOCK_SKEW_MS } from './device-token.verifier';

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

  describe('lifetime', () => {
    const clock = new FakeClock(1_800_000_000_000);
    const nowS = clock.now() / 1000;
    const make = (env: Record<string, string> = {}) =>
      new DeviceTokenVerifier(loadConfig({ API_KEYS: 'k'.repeat(16), DEVICE_JWT_SECRET: SECRET, ...env }), clock);
    const sign = (times: { iat?: number; nbf?: number; exp?: number }) =>
      jwt.sign({ ...claims, exp: nowS + 600, ...times }, SECRET, { algorithm: 'HS256', noTimestamp: times.iat === undefined });
    const outcome = (v: DeviceTokenVerifier, token: string) => {
      try {
        return v.verify(token).expiresAt;
      } catch (err) {
        return (err as { code: string }).code;
      }
    };

    it('reports exp as the expiry in ms, and refuses a token from its exp on, with no allowance', () => {
      const v = make();
      expect(outcome(v, sign({ exp: nowS + 1 }))).toBe(clock.now() + 1_000);
      expect(outcome(v, sign({ exp: nowS }))).toBe('token_expired');
      expect(outcome(v, sign({ exp: nowS + 1.2345 }))).toBe(clock.now() + 1_234); // a fractional NumericDate, in whole ms
    });

    it(`accepts iat and nbf up to ${TOKEN_CLOCK_SKEW_MS / 1000} s in the future (clock skew), and no further`, () => {
      const v = make();
      const skew = TOKEN_CLOCK_SKEW_MS / 1000;
      expect(outcome(v, sign({ iat: nowS + skew, nbf: nowS + skew }))).toBe(clock.now() + 600_000);
      expect(outcome(v, sign({ iat: nowS + skew + 1 }))).toBe('invalid_token');
      expect(outcome(v, sign({ nbf: nowS + skew + 1 }))).toBe('invalid_token');
      expect(outcome(v, sign({ iat: nowS - 3_600, nbf: nowS - 3_600 }))).toBe(clock.now() + 600_000);
    });

    it('with DEVICE_TOKEN_MAX_AGE: requires iat, ends the token at iat + max age when that is before exp', () => {
      const v = make({ DEVICE_TOKEN_MAX_AGE: '5m' });
      expect(outcome(v, sign({}))).toBe('invalid_token'); // no iat
      expect(outcome(v, sign({ iat: nowS }))).toBe(clock.now() + 300_000);
      expect(outcome(v, sign({ iat: nowS - 100, exp: nowS + 60 }))).toBe(clock.now() + 60_000); // exp comes first
      expect(outcome(v, sign({ iat: nowS - 299 }))).toBe(clock.now() + 1_000);
      expect(outcome(v, sign({ iat: nowS - 300 }))).toBe('token_expired'); // older than the max age
      expect(outcome(v, sign({ iat: nowS + 10 }))).toBe(clock.now() + 310_000); // skew: the max age counts from iat
      expect(outcome(make(), sign({}))).toBe(clock.now() + 600_000); // off by default: iat optional
    });
  });
});
