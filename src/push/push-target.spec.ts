import { createECDH, randomBytes } from 'node:crypto';
import { DEFAULT_WEBPUSH_ENDPOINT_HOSTS, hostAllowed, HostRule, parseEndpointHosts } from './endpoint-hosts';
import { readPushTarget, RegisterPushRequest } from './push-target';

const rules = (list: string[]) => parseEndpointHosts(list) as HostRule[];
const defaults = rules(DEFAULT_WEBPUSH_ENDPOINT_HOSTS);

describe('WEBPUSH_ENDPOINT_HOSTS rules', () => {
  it('allows the browsers push services by default, and nothing else', () => {
    for (const host of ['fcm.googleapis.com', 'updates.push.services.mozilla.com', 'web.push.apple.com', 'wns2-by3p.notify.windows.com', 'FCM.googleapis.com.']) {
      expect([host, hostAllowed(defaults, host)]).toEqual([host, true]);
    }
    for (const host of ['push.apple.com', 'evil.com', 'fcm.googleapis.com.evil.com', 'evilfcm.googleapis.com', 'notify.windows.com', '127.0.0.1', '[::1]', 'localhost']) {
      expect([host, hostAllowed(defaults, host)]).toEqual([host, false]);
    }
  });

  it('matches IP literals only when listed as such, never by a *.suffix', () => {
    const r = rules(['127.0.0.1', '[::1]', '*.in-addr.arpa', '*.0.1']);
    expect(r).toBeDefined();
    expect(hostAllowed(r, '127.0.0.1')).toBe(true);
    expect(hostAllowed(r, '[::1]')).toBe(true);
    expect(hostAllowed(r, '10.0.0.1')).toBe(false);
    expect(hostAllowed(r, '127.0.0.2')).toBe(false);
  });

  it('refuses entries that are neither names, IPs nor *.suffix patterns', () => {
    expect(parseEndpointHosts(['*'])).toMatch(/is not a host name/);
    expect(parseEndpointHosts(['*.com'])).toMatch(/needs a domain/);
    expect(parseEndpointHosts(['https://fcm.googleapis.com'])).toMatch(/is not a host name/);
    expect(parseEndpointHosts(['a..b'])).toMatch(/is not a host name/);
  });
});

describe('readPushTarget', () => {
  const key = () => {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    return ecdh.getPublicKey().toString('base64url');
  };
  const sub = (over: Partial<{ endpoint: string; p256dh: string; auth: string }> = {}) => ({
    endpoint: over.endpoint ?? 'https://fcm.googleapis.com/fcm/send/abc:def',
    expirationTime: null,
    keys: { p256dh: over.p256dh ?? key(), auth: over.auth ?? randomBytes(16).toString('base64url') },
  });
  const read = (r: RegisterPushRequest) => readPushTarget(r, defaults);

  it('accepts a browser subscription on an allowed host and well-formed APNs and FCM tokens', () => {
    const s = sub();
    expect(read({ provider: 'webpush', subscription: s })).toEqual({ provider: 'webpush', subscription: s });
    expect(read({ provider: 'apns', token: 'AB'.repeat(32) })).toEqual({ provider: 'apns', token: 'ab'.repeat(32) });
    const fcm = `dXyz:APA91b${'x'.repeat(140)}`;
    expect(read({ provider: 'fcm', token: fcm })).toEqual({ provider: 'fcm', token: fcm });
  });

  it.each([
    ['http endpoint', { provider: 'webpush', subscription: sub({ endpoint: 'http://fcm.googleapis.com/x' }) }, /https/],
    ['host not allowed', { provider: 'webpush', subscription: sub({ endpoint: 'https://169.254.169.254/latest' }) }, /not a push service/],
    ['credentials in the URL', { provider: 'webpush', subscription: sub({ endpoint: 'https://u:p@fcm.googleapis.com/x' }) }, /credentials/],
    ['not a URL', { provider: 'webpush', subscription: sub({ endpoint: 'fcm.googleapis.com/x' }) }, /not a URL/],
    ['a point not on the curve', { provider: 'webpush', subscription: sub({ p256dh: Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 7)]).toString('base64url') }) }, /P-256/],
    ['a compressed key', { provider: 'webpush', subscription: sub({ p256dh: Buffer.alloc(33, 2).toString('base64url') }) }, /P-256/],
    ['a short auth secret', { provider: 'webpush', subscription: sub({ auth: randomBytes(8).toString('base64url') }) }, /16 bytes/],
    ['auth that is not base64url', { provider: 'webpush', subscription: sub({ auth: 'a+b/c'.repeat(5) }) }, /16 bytes/],
    ['webpush with a token', { provider: 'webpush', token: 'x', subscription: sub() }, /no token/],
    ['webpush without a subscription', { provider: 'webpush' }, /takes a subscription/],
    ['apns token not hex', { provider: 'apns', token: 'zz'.repeat(32) }, /hex/],
    ['apns token too short', { provider: 'apns', token: 'ab' }, /hex/],
    ['apns with a subscription', { provider: 'apns', token: 'ab'.repeat(32), subscription: sub() }, /token/],
    ['fcm token with spaces', { provider: 'fcm', token: 'a b'.repeat(20) }, /FCM registration token/],
    ['fcm token too long', { provider: 'fcm', token: 'a'.repeat(1025) }, /FCM registration token/],
  ] as [string, RegisterPushRequest, RegExp][])('refuses %s', (_, request, why) => {
    expect(read(request)).toMatch(why);
  });
});
