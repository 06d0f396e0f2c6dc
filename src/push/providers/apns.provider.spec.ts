import { generateKeyPairSync } from 'node:crypto';
import { counter, notification, recordingTiming, testDelivery } from '../../../test/support/push/kit';
import { ApnsTestServer, waitForCount } from '../../../test/support/push';
import { ApnsSettings } from '../../config/push-provider-settings';
import { MetricsService } from '../../metrics/metrics.service';
import { APNS_TOKEN_REFRESH_MS } from './apns-token';
import { createPushSender } from './create-push-sender';

describe('APNs provider against a local HTTP/2 APNs', () => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const p8 = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const identity = { keyId: 'ABC123DEFG', teamId: 'TEAM123456', topic: 'com.example.chat' };
  let server: ApnsTestServer;
  let settings: ApnsSettings;
  const deviceToken = 'a1b2c3d4'.repeat(8);

  beforeAll(async () => {
    server = await ApnsTestServer.start({ key: p8, ...identity });
    settings = { key: p8, ...identity, url: server.url };
  });
  afterAll(() => server.close());

  function sender(delivery = testDelivery(), now: () => number = Date.now) {
    const metrics = new MetricsService();
    const timing = recordingTiming();
    const push = createPushSender({ apns: settings, delivery }, metrics, { now, timing, ca: server.caPem });
    return { push, metrics, timing };
  }

  const since = (n: number) => server.received.slice(n);

  it('posts /3/device/<token> with the apns-* headers, a verified provider token and aps.alert + id + data', async () => {
    const { push } = sender();
    const before = server.received.length;
    const n = notification({ collapseKey: 'order-42' });
    const t0 = Math.floor(Date.now() / 1000);
    const outcome = await push.send({ provider: 'apns', token: deviceToken }, { notification: n, ttlSeconds: 3600 });
    expect(outcome).toEqual({ status: 'sent', provider: 'apns' });
    const [got] = since(before);
    expect(got?.problems).toEqual([]);
    expect(got?.deviceToken).toBe(deviceToken);
    expect(got?.headers).toMatchObject({
      'apns-topic': 'com.example.chat',
      'apns-push-type': 'alert',
      'apns-priority': '10',
      'apns-collapse-id': 'order-42',
      'apns-id': n.id,
    });
    expect(Number(got?.headers['apns-expiration'])).toBeGreaterThanOrEqual(t0 + 3600);
    expect(Number(got?.headers['apns-expiration'])).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 3600);
    expect(got?.providerToken).toMatchObject({ iss: identity.teamId, kid: identity.keyId });
    expect(got?.body).toEqual({ aps: { alert: { title: n.title, body: n.body } }, id: n.id, data: n.data });
    await push.onApplicationShutdown();
  });

  it('sends data without title or body as a background push (priority 5); ttl 0 as expiration 0; a long collapse key hashed to 64 bytes at most', async () => {
    const { push } = sender();
    const before = server.received.length;
    const collapseKey = 'x'.repeat(100);
    const n = notification({ title: undefined, body: undefined, id: 'not-a-uuid', collapseKey });
    await push.send({ provider: 'apns', token: deviceToken }, { notification: n, ttlSeconds: 0 });
    await push.send({ provider: 'apns', token: deviceToken }, { notification: n, ttlSeconds: 0 });
    const [a, b] = since(before);
    expect(a?.problems).toEqual([]);
    expect(a?.headers).toMatchObject({ 'apns-push-type': 'background', 'apns-priority': '5', 'apns-expiration': '0', 'apns-id': undefined });
    expect(Buffer.byteLength(a?.headers['apns-collapse-id'] ?? '')).toBeLessThanOrEqual(64);
    expect(b?.headers['apns-collapse-id']).toBe(a?.headers['apns-collapse-id']);
    expect(a?.body).toEqual({ aps: { 'content-available': 1 }, id: 'not-a-uuid', data: n.data });
    await push.onApplicationShutdown();
  });

  it('reuses one provider token on one HTTP/2 connection, and makes a new token when it is due', async () => {
    let now = Date.now();
    const { push } = sender(testDelivery(), () => now);
    const before = server.received.length;
    const sessionsBefore = server.sessionCount;
    for (let i = 0; i < 3; i += 1) await push.send({ provider: 'apns', token: deviceToken }, { notification: notification(), ttlSeconds: 60 });
    now += APNS_TOKEN_REFRESH_MS - 1_000;
    await push.send({ provider: 'apns', token: deviceToken }, { notification: notification(), ttlSeconds: 60 });
    now += 2_000;
    await push.send({ provider: 'apns', token: deviceToken }, { notification: notification(), ttlSeconds: 60 });
    const got = since(before);
    expect(got.map((r) => r.problems)).toEqual([[], [], [], [], []]);
    const tokens = got.map((r) => r.providerToken?.raw);
    expect(new Set(tokens.slice(0, 4)).size).toBe(1);
    expect(tokens[4]).not.toBe(tokens[0]);
    expect((got[4]?.providerToken?.iat ?? 0) - (got[0]?.providerToken?.iat ?? 0)).toBeGreaterThanOrEqual(APNS_TOKEN_REFRESH_MS / 1000);
    expect(new Set(got.map((r) => r.session)).size).toBe(1);
    expect(server.sessionCount).toBe(sessionsBefore + 1);
    expect(server.openSessionCount).toBeGreaterThanOrEqual(1);
    await push.onApplicationShutdown();
    // Shutdown closes the session: the server sees every connection go.
    await waitForCount(() => (server.openSessionCount === 0 ? 1 : 0), 1, 'closed APNs connections');
  });

  it('answers gone for 410 Unregistered and 400 BadDeviceToken, without retrying', async () => {
    const { push, metrics } = sender();
    const gone = 'ee'.repeat(32);
    server.unregister(gone);
    const before = server.received.length;
    const first = await push.send({ provider: 'apns', token: gone }, { notification: notification(), ttlSeconds: 60 });
    server.script.reply({ status: 400, body: { reason: 'BadDeviceToken' } });
    const second = await push.send({ provider: 'apns', token: deviceToken }, { notification: notification(), ttlSeconds: 60 });
    expect(first).toMatchObject({ status: 'failed', reason: 'gone', detail: 'APNs answered 410 Unregistered' });
    expect(second).toMatchObject({ status: 'failed', reason: 'gone', detail: 'APNs answered 400 BadDeviceToken' });
    expect(since(before)).toHaveLength(2);
    expect(await counter(metrics, 'push_gateway_native_pushes_total', { provider: 'apns', result: 'gone' })).toBe(2);
    await push.onApplicationShutdown();
  });

  it('rejects other 400s (BadTopic) and a token that is not hex, the latter without a request', async () => {
    const { push } = sender();
    const before = server.received.length;
    server.script.reply({ status: 400, body: { reason: 'TopicDisallowed' } });
    const first = await push.send({ provider: 'apns', token: deviceToken }, { notification: notification(), ttlSeconds: 60 });
    const second = await push.send({ provider: 'apns', token: '../../x' }, { notification: notification(), ttlSeconds: 60 });
    expect(first).toMatchObject({ status: 'failed', reason: 'rejected', detail: 'APNs answered 400 TopicDisallowed' });
    expect(second).toMatchObject({ status: 'failed', reason: 'rejected' });
    expect(since(before)).toHaveLength(1);
    await push.onApplicationShutdown();
  });

  it('makes a new provider token after 403 ExpiredProviderToken and sends again at once', async () => {
    const { push, timing } = sender();
    const before = server.received.length;
    await push.send({ provider: 'apns', token: deviceToken }, { notification: notification(), ttlSeconds: 60 });
    server.script.reply({ status: 403, body: { reason: 'ExpiredProviderToken' } });
    // Within the same second the new token could be byte-identical; what matters is that one is made and accepted.
    const outcome = await push.send({ provider: 'apns', token: deviceToken }, { notification: notification(), ttlSeconds: 60 });
    expect(outcome).toEqual({ status: 'sent', provider: 'apns' });
    expect(since(before).map((r) => r.status)).toEqual([200, 403, 200]);
    expect(timing.sleeps).toEqual([0]);
    await push.onApplicationShutdown();
  });

  it('honours Retry-After on 429 TooManyRequests', async () => {
    const { push, timing } = sender();
    server.script.reply({ status: 429, headers: { 'retry-after': '2' }, body: { reason: 'TooManyRequests' } });
    const outcome = await push.send({ provider: 'apns', token: deviceToken }, { notification: notification(), ttlSeconds: 60 });
    expect(outcome).toEqual({ status: 'sent', provider: 'apns' });
    expect(timing.sleeps).toEqual([2_000]);
    await push.onApplicationShutdown();
  });

  it('retries while APNs drops connections, then answers unavailable; reconnects when it is back', async () => {
    const { push, timing } = sender(testDelivery({ maxAttempts: 3 }));
    const before = server.received.length;
    const sessionsBefore = server.sessionCount;
    server.script.down();
    let outcome;
    try {
      outcome = await push.send({ provider: 'apns', token: deviceToken }, { notification: notification(), ttlSeconds: 60 });
    } finally {
      server.script.down(false);
    }
    expect(outcome).toMatchObject({ status: 'failed', provider: 'apns', reason: 'unavailable' });
    expect(since(before)).toHaveLength(3);
    expect(timing.sleeps).toEqual([75, 150]);
    expect(server.sessionCount).toBe(sessionsBefore + 3);
    const after = await push.send({ provider: 'apns', token: deviceToken }, { notification: notification(), ttlSeconds: 60 });
    expect(after).toEqual({ status: 'sent', provider: 'apns' });
    await push.onApplicationShutdown();
  });

  it('drops a connection that stops answering, and retries on a new one', async () => {
    // Generous attempts and timeout: on a loaded machine the retry may time out too; what matters is the new connection.
    const { push } = sender(testDelivery({ requestTimeoutMs: 1_000, maxAttempts: 4 }));
    const before = server.received.length;
    server.script.hold();
    const sending = push.send({ provider: 'apns', token: deviceToken }, { notification: notification(), ttlSeconds: 60 });
    try {
      await server.waitForRequests(before + 2);
    } finally {
      server.script.release();
    }
    expect(await sending).toEqual({ status: 'sent', provider: 'apns' });
    const [first, second] = server.received.slice(before);
    expect(second?.session).not.toBe(first?.session);
    await push.onApplicationShutdown();
  });

  it('opens a new connection when APNs closes the old one', async () => {
    const { push } = sender();
    const sessionsBefore = server.sessionCount;
    await push.send({ provider: 'apns', token: deviceToken }, { notification: notification(), ttlSeconds: 60 });
    server.dropConnections();
    const outcome = await push.send({ provider: 'apns', token: deviceToken }, { notification: notification(), ttlSeconds: 60 });
    expect(outcome).toEqual({ status: 'sent', provider: 'apns' });
    expect(server.sessionCount).toBe(sessionsBefore + 2);
    await push.onApplicationShutdown();
  });
});

describe('APNs provider when nothing listens', () => {
  it('retries refused connections, then answers unavailable', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const p8 = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const identity = { keyId: 'ABC123DEFG', teamId: 'TEAM123456', topic: 'com.example.chat' };
    const gone = await ApnsTestServer.start({ key: p8, ...identity });
    const url = gone.url;
    await gone.close();
    const timing = recordingTiming();
    const push = createPushSender({ apns: { key: p8, ...identity, url }, delivery: testDelivery({ maxAttempts: 3 }) }, new MetricsService(), { now: Date.now, timing, ca: gone.caPem });
    const outcome = await push.send({ provider: 'apns', token: 'ab'.repeat(32) }, { notification: notification(), ttlSeconds: 60 });
    expect(outcome).toMatchObject({ status: 'failed', provider: 'apns', reason: 'unavailable' });
    expect(outcome.status === 'failed' && outcome.detail).toMatch(/ECONNREFUSED/);
    expect(timing.sleeps).toEqual([75, 150]);
    await push.onApplicationShutdown();
  });
});
