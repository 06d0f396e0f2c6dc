import { counter, notification, recordingTiming, testDelivery } from '../../../test/support/push/kit';
import { FcmTestServer } from '../../../test/support/push';
import { FcmSettings } from '../../config/push-provider-settings';
import { MetricsService } from '../../metrics/metrics.service';
import { createPushSender } from './create-push-sender';

describe('FCM provider against a local OAuth endpoint and FCM v1', () => {
  let server: FcmTestServer;
  let settings: FcmSettings;
  const deviceToken = 'fcm-token:APA91b' + 'x'.repeat(120);

  beforeAll(async () => {
    server = await FcmTestServer.start();
    const json = server.serviceAccount();
    settings = {
      url: server.url,
      serviceAccount: {
        projectId: json.project_id ?? '',
        clientEmail: json.client_email ?? '',
        privateKey: json.private_key ?? '',
        privateKeyId: json.private_key_id,
        tokenUri: json.token_uri ?? '',
      },
    };
  });
  afterAll(() => server.close());

  function sender(delivery = testDelivery(), now: () => number = Date.now) {
    const metrics = new MetricsService();
    const timing = recordingTiming();
    const push = createPushSender({ fcm: settings, delivery }, metrics, { now, timing, ca: server.caPem });
    return { push, metrics, timing };
  }

  it('gets an OAuth token with a verified RS256 assertion and sends the v1 message', async () => {
    const { push } = sender();
    const tokensBefore = server.tokenRequests.length;
    const before = server.received.length;
    const n = notification({ collapseKey: 'order-42' });
    const t0 = Math.floor(Date.now() / 1000);
    const outcome = await push.send({ provider: 'fcm', token: deviceToken }, { notification: n, ttlSeconds: 300 });
    expect(outcome).toEqual({ status: 'sent', provider: 'fcm' });
    const [tokenRequest] = server.tokenRequests.slice(tokensBefore);
    expect(tokenRequest?.problems).toEqual([]);
    expect(tokenRequest?.claims).toMatchObject({ aud: server.tokenUri, scope: 'https://www.googleapis.com/auth/firebase.messaging' });
    const [got] = server.received.slice(before);
    expect(got?.problems).toEqual([]);
    expect(got?.bearer).toBe(tokenRequest?.issued);
    expect(got?.message).toEqual({
      token: deviceToken,
      notification: { title: n.title, body: n.body },
      data: { id: n.id, data: JSON.stringify(n.data) },
      android: { priority: 'HIGH', ttl: '300s', collapse_key: 'order-42' },
      apns: { headers: { 'apns-priority': '10', 'apns-expiration': expect.any(String), 'apns-collapse-id': 'order-42' } },
      webpush: { headers: { TTL: '300', Urgency: 'high', Topic: 'order-42' } },
    });
    const expiration = Number((got?.message?.apns as { headers: Record<string, string> }).headers['apns-expiration']);
    expect(expiration).toBeGreaterThanOrEqual(t0 + 300);
    // The app reads the same object the socket carries back from the one string key.
    expect(JSON.parse((got?.message?.data as Record<string, string>).data ?? '')).toEqual(n.data);
    await push.onApplicationShutdown();
  });

  it('sends silent data without a notification block, at normal priority', async () => {
    const { push } = sender();
    const before = server.received.length;
    const n = notification({ title: undefined, body: undefined, data: undefined });
    await push.send({ provider: 'fcm', token: deviceToken }, { notification: n, ttlSeconds: 0 });
    const [got] = server.received.slice(before);
    expect(got?.problems).toEqual([]);
    expect(got?.message?.notification).toBeUndefined();
    expect(got?.message?.data).toEqual({ id: n.id });
    expect(got?.message?.android).toEqual({ priority: 'NORMAL', ttl: '0s' });
    await push.onApplicationShutdown();
  });

  it('reuses the access token across pushes (one fetch for concurrent first pushes) and fetches a new one when it is due', async () => {
    let now = Date.now();
    const { push } = sender(testDelivery(), () => now);
    const tokensBefore = server.tokenRequests.length;
    const before = server.received.length;
    await Promise.all([1, 2, 3].map(() => push.send({ provider: 'fcm', token: deviceToken }, { notification: notification(), ttlSeconds: 60 })));
    await push.send({ provider: 'fcm', token: deviceToken }, { notification: notification(), ttlSeconds: 60 });
    expect(server.tokenRequests.length - tokensBefore).toBe(1);
    // Google's tokens live 3599 s; the gateway replaces one 5 minutes early.
    now += 3599_000 - 5 * 60_000 + 1_000;
    await push.send({ provider: 'fcm', token: deviceToken }, { notification: notification(), ttlSeconds: 60 });
    expect(server.tokenRequests.length - tokensBefore).toBe(2);
    const got = server.received.slice(before);
    expect(got.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(new Set(got.slice(0, 4).map((r) => r.bearer)).size).toBe(1);
    expect(got[4]?.bearer).not.toBe(got[0]?.bearer);
    await push.onApplicationShutdown();
  });

  it('fetches a new token after a 401 and sends again at once', async () => {
    const { push, timing } = sender();
    await push.send({ provider: 'fcm', token: deviceToken }, { notification: notification(), ttlSeconds: 60 });
    server.revokeTokens();
    const tokensBefore = server.tokenRequests.length;
    const outcome = await push.send({ provider: 'fcm', token: deviceToken }, { notification: notification(), ttlSeconds: 60 });
    expect(outcome).toEqual({ status: 'sent', provider: 'fcm' });
    expect(server.tokenRequests.length - tokensBefore).toBe(1);
    expect(timing.sleeps).toEqual([0]);
    await push.onApplicationShutdown();
  });

  it('answers gone for UNREGISTERED (404), without retrying', async () => {
    const { push, metrics } = sender();
    const gone = 'uninstalled-app-token';
    server.unregister(gone);
    const before = server.received.length;
    const outcome = await push.send({ provider: 'fcm', token: gone }, { notification: notification(), ttlSeconds: 60 });
    expect(outcome).toMatchObject({ status: 'failed', provider: 'fcm', reason: 'gone', detail: 'FCM answered 404 NOT_FOUND UNREGISTERED' });
    expect(server.received.slice(before)).toHaveLength(1);
    expect(await counter(metrics, 'push_gateway_native_pushes_total', { provider: 'fcm', result: 'gone' })).toBe(1);
    await push.onApplicationShutdown();
  });

  it('rejects INVALID_ARGUMENT, and a service account the token endpoint refuses', async () => {
    const { push } = sender();
    server.script.reply({ status: 400, body: { error: { code: 400, status: 'INVALID_ARGUMENT', details: [{ errorCode: 'INVALID_ARGUMENT' }] } } });
    const first = await push.send({ provider: 'fcm', token: deviceToken }, { notification: notification(), ttlSeconds: 60 });
    expect(first).toMatchObject({ status: 'failed', reason: 'rejected' });
    const fresh = sender();
    server.tokenScript.reply({ status: 400, body: { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' } });
    const second = await fresh.push.send({ provider: 'fcm', token: deviceToken }, { notification: notification(), ttlSeconds: 60 });
    expect(second).toMatchObject({ status: 'failed', reason: 'rejected', detail: 'OAuth token endpoint answered 400 invalid_grant: Invalid JWT Signature.' });
    await push.onApplicationShutdown();
    await fresh.push.onApplicationShutdown();
  });

  it('honours Retry-After on 429 QUOTA_EXCEEDED', async () => {
    const { push, timing } = sender();
    server.script.reply({ status: 429, headers: { 'retry-after': '4' }, body: { error: { code: 429, status: 'RESOURCE_EXHAUSTED', details: [{ errorCode: 'QUOTA_EXCEEDED' }] } } });
    const outcome = await push.send({ provider: 'fcm', token: deviceToken }, { notification: notification(), ttlSeconds: 60 });
    expect(outcome).toEqual({ status: 'sent', provider: 'fcm' });
    expect(timing.sleeps).toEqual([4_000]);
    await push.onApplicationShutdown();
  });

  it('retries 503 UNAVAILABLE and dropped connections, then answers unavailable', async () => {
    const { push, timing, metrics } = sender(testDelivery({ maxAttempts: 3 }));
    await push.send({ provider: 'fcm', token: deviceToken }, { notification: notification(), ttlSeconds: 60 });
    const before = server.received.length;
    server.script.reply({ status: 503, body: { error: { code: 503, status: 'UNAVAILABLE' } } }, { drop: true }, { status: 500 });
    const outcome = await push.send({ provider: 'fcm', token: deviceToken }, { notification: notification(), ttlSeconds: 60 });
    expect(outcome).toMatchObject({ status: 'failed', provider: 'fcm', reason: 'unavailable' });
    expect(server.received.slice(before).map((r) => r.status)).toEqual([503, -1, 500]);
    expect(timing.sleeps).toEqual([75, 150]);
    expect(await counter(metrics, 'push_gateway_native_pushes_total', { provider: 'fcm', result: 'unavailable' })).toBe(1);
    await push.onApplicationShutdown();
  });

  it('signs the assertion without a kid when the account JSON has no private_key_id', async () => {
    const metrics = new MetricsService();
    const account = { ...settings.serviceAccount, privateKeyId: undefined };
    const push = createPushSender({ fcm: { ...settings, serviceAccount: account }, delivery: testDelivery() }, metrics, { now: Date.now, timing: recordingTiming(), ca: server.caPem });
    const tokensBefore = server.tokenRequests.length;
    const outcome = await push.send({ provider: 'fcm', token: deviceToken }, { notification: notification(), ttlSeconds: 60 });
    expect(outcome).toEqual({ status: 'sent', provider: 'fcm' });
    const [req] = server.tokenRequests.slice(tokensBefore);
    expect(req?.kid).toBeUndefined();
    expect(req?.problems).toEqual([]);
    await push.onApplicationShutdown();
  });

  it('retries when the token endpoint cannot be reached, then answers unavailable', async () => {
    const closed = await FcmTestServer.start();
    const json = closed.serviceAccount();
    const url = closed.url;
    await closed.close();
    const timing = recordingTiming();
    const account = { projectId: json.project_id ?? '', clientEmail: json.client_email ?? '', privateKey: json.private_key ?? '', tokenUri: json.token_uri ?? '' };
    const push = createPushSender({ fcm: { url, serviceAccount: account }, delivery: testDelivery({ maxAttempts: 2 }) }, new MetricsService(), { now: Date.now, timing, ca: server.caPem });
    const outcome = await push.send({ provider: 'fcm', token: deviceToken }, { notification: notification(), ttlSeconds: 60 });
    expect(outcome).toMatchObject({ status: 'failed', reason: 'unavailable' });
    expect(outcome.status === 'failed' && outcome.detail).toMatch(/ECONNREFUSED/);
    expect(timing.sleeps).toEqual([75]);
    await push.onApplicationShutdown();
  });
});
