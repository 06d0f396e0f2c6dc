import * as webpush from 'web-push';
import { recordingTiming, counter, notification, testDelivery } from '../../../test/support/push/kit';
import { waitForCount, WebPushTestServer } from '../../../test/support/push';
import { MetricsService } from '../../metrics/metrics.service';
import { createPushSender } from './create-push-sender';
import { ProviderDelivery } from './provider-delivery';
import { WebPushProvider } from './web-push.provider';

describe('Web Push provider against a local push service', () => {
  let server: WebPushTestServer;
  const vapid = webpush.generateVAPIDKeys();
  const webpushSettings = { publicKey: vapid.publicKey, privateKey: vapid.privateKey, subject: 'mailto:ops@example.com' };

  beforeAll(async () => {
    server = await WebPushTestServer.start();
  });
  afterAll(() => server.close());

  function sender(delivery = testDelivery()) {
    const metrics = new MetricsService();
    const timing = recordingTiming();
    const push = createPushSender({ webpush: webpushSettings, delivery }, metrics, { now: Date.now, timing, ca: server.caPem });
    return { push, metrics, timing };
  }

  it('sends the notification encrypted (aes128gcm) with a VAPID header, TTL, Urgency and Topic', async () => {
    const { push, metrics } = sender();
    const sub = server.subscribe();
    const n = notification({ collapseKey: 'order-42' });
    const outcome = await push.send({ provider: 'webpush', subscription: sub.json }, { notification: n, ttlSeconds: 300 });
    expect(outcome).toEqual({ status: 'sent', provider: 'webpush' });
    const [got] = server.receivedFor(sub.id);
    expect(got?.problems).toEqual([]);
    expect(got?.payload).toEqual(n);
    expect(got?.headers).toMatchObject({ ttl: '300', urgency: 'high', topic: 'order-42', contentEncoding: 'aes128gcm' });
    expect(got?.vapid).toMatchObject({ aud: server.origin, sub: 'mailto:ops@example.com', publicKey: vapid.publicKey });
    expect(await counter(metrics, 'push_gateway_native_pushes_total', { provider: 'webpush', result: 'sent' })).toBe(1);
    await push.onApplicationShutdown();
  });

  it('derives a stable 32-character Topic from a collapse key Web Push cannot carry', async () => {
    const { push } = sender();
    const sub = server.subscribe();
    const long = 'chat:room/4711 — unread messages for alice@example.com';
    for (const collapseKey of [long, long, 'other key']) {
      await push.send({ provider: 'webpush', subscription: sub.json }, { notification: notification({ collapseKey }), ttlSeconds: 60 });
    }
    const topics = server.receivedFor(sub.id).map((r) => r.headers.topic);
    expect(topics[0]).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(topics[1]).toBe(topics[0]);
    expect(topics[2]).not.toBe(topics[0]);
    expect(server.receivedFor(sub.id).every((r) => r.problems.length === 0)).toBe(true);
    await push.onApplicationShutdown();
  });

  it('sends silent data at normal urgency, without a Topic, and TTL 0 as now-or-never', async () => {
    const { push } = sender();
    const sub = server.subscribe();
    const n = notification({ title: undefined, body: undefined, data: 'just data' });
    await push.send({ provider: 'webpush', subscription: sub.json }, { notification: n, ttlSeconds: 0 });
    const [got] = server.receivedFor(sub.id);
    expect(got?.problems).toEqual([]);
    expect(got?.headers).toMatchObject({ ttl: '0', urgency: 'normal', topic: undefined });
    expect(got?.payload).toEqual(JSON.parse(JSON.stringify(n)));
    await push.onApplicationShutdown();
  });

  it('answers gone for an expired subscription (410), without retrying', async () => {
    const { push, metrics } = sender();
    const sub = server.subscribe();
    server.unsubscribe(sub.id);
    const outcome = await push.send({ provider: 'webpush', subscription: sub.json }, { notification: notification(), ttlSeconds: 60 });
    expect(outcome).toMatchObject({ status: 'failed', provider: 'webpush', reason: 'gone' });
    expect(server.receivedFor(sub.id)).toHaveLength(1);
    expect(await counter(metrics, 'push_gateway_native_pushes_total', { provider: 'webpush', result: 'gone' })).toBe(1);
    await push.onApplicationShutdown();
  });

  it('treats 404 as gone and another 4xx as rejected, neither retried', async () => {
    const { push } = sender();
    const sub = server.subscribe();
    server.script.reply({ status: 404 }, { status: 413, body: 'payload too large' });
    const first = await push.send({ provider: 'webpush', subscription: sub.json }, { notification: notification(), ttlSeconds: 60 });
    const second = await push.send({ provider: 'webpush', subscription: sub.json }, { notification: notification(), ttlSeconds: 60 });
    expect(first).toMatchObject({ status: 'failed', reason: 'gone' });
    expect(second).toMatchObject({ status: 'failed', reason: 'rejected' });
    expect(server.receivedFor(sub.id)).toHaveLength(2);
    await push.onApplicationShutdown();
  });

  it('fits a notification of up to 3993 bytes of JSON into the 4096-byte body; a larger one is rejected (413), not retried', async () => {
    const { push } = sender();
    const sub = server.subscribe();
    const sized = (bytes: number) => {
      const n = notification({ data: '' });
      return notification({ data: 'x'.repeat(bytes - Buffer.byteLength(JSON.stringify(n))) });
    };
    const fits = await push.send({ provider: 'webpush', subscription: sub.json }, { notification: sized(3993), ttlSeconds: 60 });
    const tooBig = await push.send({ provider: 'webpush', subscription: sub.json }, { notification: sized(3994), ttlSeconds: 60 });
    expect(fits).toEqual({ status: 'sent', provider: 'webpush' });
    expect(tooBig).toMatchObject({ status: 'failed', reason: 'rejected', detail: expect.stringMatching(/^push service answered 413/) });
    expect(server.receivedFor(sub.id).map((r) => r.status)).toEqual([201, 413]);
    await push.onApplicationShutdown();
  });

  it('waits as long as a 429 Retry-After says, then sends', async () => {
    const { push, timing } = sender();
    const sub = server.subscribe();
    server.script.reply({ status: 429, headers: { 'retry-after': '7' } });
    const outcome = await push.send({ provider: 'webpush', subscription: sub.json }, { notification: notification(), ttlSeconds: 600 });
    expect(outcome).toEqual({ status: 'sent', provider: 'webpush' });
    expect(timing.sleeps).toEqual([7_000]);
    const [first, second] = server.receivedFor(sub.id);
    expect([first?.status, second?.status]).toEqual([429, 201]);
    // The retry carries what is left of the ttl, never more than the first attempt's.
    expect(Number(second?.headers.ttl)).toBeLessThanOrEqual(600);
    await push.onApplicationShutdown();
  });

  it('retries a push service that is down with growing backoff, then answers unavailable', async () => {
    const { push, timing, metrics } = sender(testDelivery({ maxAttempts: 4, retryBaseMs: 100 }));
    const sub = server.subscribe();
    server.script.down();
    try {
      const outcome = await push.send({ provider: 'webpush', subscription: sub.json }, { notification: notification(), ttlSeconds: 600 });
      expect(outcome).toMatchObject({ status: 'failed', provider: 'webpush', reason: 'unavailable' });
      expect(outcome.status === 'failed' && outcome.detail).toMatch(/no attempts left/);
    } finally {
      server.script.down(false);
    }
    expect(server.receivedFor(sub.id)).toHaveLength(4);
    // random() = 0.5 puts each wait at 75% of 100, 200, 400 ms.
    expect(timing.sleeps).toEqual([75, 150, 300]);
    expect(await counter(metrics, 'push_gateway_native_push_attempts_total', { provider: 'webpush', result: 'retry' })).toBe(4);
    expect(await counter(metrics, 'push_gateway_native_pushes_total', { provider: 'webpush', result: 'unavailable' })).toBe(1);
    await push.onApplicationShutdown();
  });

  it('retries 5xx and gives up early when Retry-After passes the retry budget', async () => {
    const { push, timing } = sender(testDelivery({ retryBudgetMs: 5_000 }));
    const sub = server.subscribe();
    server.script.reply({ status: 503 }, { status: 503, headers: { 'retry-after': '3600' } });
    const outcome = await push.send({ provider: 'webpush', subscription: sub.json }, { notification: notification(), ttlSeconds: 7_200 });
    expect(outcome).toMatchObject({ status: 'failed', reason: 'unavailable' });
    expect(outcome.status === 'failed' && outcome.detail).toMatch(/retry budget/);
    expect(timing.sleeps).toEqual([75]);
    expect(server.receivedFor(sub.id)).toHaveLength(2);
    await push.onApplicationShutdown();
  });

  it('keeps at most `concurrency` requests in flight; the rest wait their turn', async () => {
    const metrics = new MetricsService();
    const provider = new WebPushProvider(webpushSettings, { requestTimeoutMs: 5_000, maxSockets: 8, ca: server.caPem });
    const delivery = new ProviderDelivery(provider, testDelivery({ concurrency: 2 }), recordingTiming(), metrics);
    server.maxInFlight = 0;
    server.script.hold();
    const subs = Array.from({ length: 6 }, () => server.subscribe());
    const sends = subs.map((s) => delivery.send({ provider: 'webpush', subscription: s.json }, { notification: notification(), ttlSeconds: 60 }));
    try {
      await waitForCount(() => server.inFlight, 2, 'requests in flight');
      const deadline = Date.now() + 10_000;
      while (delivery.queued < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      expect(delivery.queued).toBe(4);
      expect(delivery.inFlight).toBe(2);
    } finally {
      server.script.release();
    }
    const outcomes = await Promise.all(sends);
    expect(outcomes.every((o) => o.status === 'sent')).toBe(true);
    expect(server.maxInFlight).toBe(2);
    await delivery.close();
  });

  it('says which providers are on, and answers not_configured for the others', async () => {
    const metrics = new MetricsService();
    const push = createPushSender({ webpush: webpushSettings, delivery: testDelivery() }, metrics, { now: Date.now });
    expect(push.enabled('webpush')).toBe(true);
    expect(push.enabled('apns')).toBe(false);
    const outcome = await push.send({ provider: 'apns', token: 'ab'.repeat(32) }, { notification: notification(), ttlSeconds: 60 });
    expect(outcome).toMatchObject({ status: 'failed', provider: 'apns', reason: 'not_configured' });
    expect(await counter(metrics, 'push_gateway_native_pushes_total', { provider: 'apns', result: 'not_configured' })).toBe(1);
    await push.onApplicationShutdown();
  });
});
