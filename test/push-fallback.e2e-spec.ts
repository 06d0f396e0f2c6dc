import Redis from 'ioredis';
import { Socket } from 'socket.io-client';
import * as webpush from 'web-push';
import { EventEnvelope } from '../src/events/event.types';
import { api, connectDevice, metric, nextEvent, pushesSettled, startTestApp, TestApp, waitFor } from './support/app';
import { FakeClock } from './support/fake-clock';
import { getJson } from './support/gateways';
import { generateKeyPairSync } from 'node:crypto';
import { ApnsTestServer, FcmTestServer, TestSubscription, WebPushTestServer } from './support/push';
import { trustTestCa } from './support/trust-test-ca';
import { deleteKeys, eventsSettled, testClusterNodes, testRedisUrl, uniquePrefix } from './support/redis';
import { deviceToken } from './support/tokens';

type Json = Record<string, any>;
const ACK_MS = 1_000;

/**
 * The fallback policy for real: two gateway instances on one Redis (sharing an injected clock, so
 * deadlines move when the test says), real sockets, and Web Push through the real provider to a
 * local push service on HTTPS that checks VAPID and decrypts every payload. Ack deadlines, ttl
 * expiry and the native pushes come from the store's due-time index, claimed by either instance.
 */
describe.each([
  ['two instances on Redis', true],
  ['one instance on the embedded store', false],
])('native push fallback (%s, real sockets, local Web Push, APNs and FCM services)', (_name, withRedis) => {
  const prefix = uniquePrefix('fallback');
  const redis = new Redis(testRedisUrl());
  const clock = new FakeClock(Date.now());
  const sockets: Socket[] = [];
  let service: WebPushTestServer;
  let apns: ApnsTestServer;
  let fcm: FcmTestServer;
  const apnsKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const apnsIdentity = { keyId: 'KEY1234567', teamId: 'TEAM765432', topic: 'com.example.fallback' };
  let a: TestApp;
  let b: TestApp;

  /** A device of user fb-user; `ack: false` keeps each notification's ack callback in `acks` for the test to call. */
  const device = async (deviceId: string, opts: { app?: TestApp; ack?: boolean } = {}) => {
    const socket = connectDevice((opts.app ?? a).url, deviceToken({ sub: 'fb-user', deviceId }));
    sockets.push(socket);
    const received: Json[] = [];
    const acks = new Map<string, () => void>();
    socket.on('notification', (n: Json, ack: () => void) => {
      received.push(n);
      if (opts.ack ?? true) ack();
      else acks.set(n.id as string, ack);
    });
    await nextEvent(socket, 'ready');
    return { socket, received, acks };
  };
  /** The running instances (one on the embedded store). */
  const apps = () => [...new Set([a, b])];
  /** Resolves once each instance has run two more deadline sweeps: what they did not fire by then, they never will for this clock. */
  const deadlineSweepsRan = () =>
    Promise.all(
      apps().map(async (app) => {
        const series = 'push_gateway_notification_deadline_sweeps_total';
        const from = await metric(app.url, series);
        await waitFor(async () => (await metric(app.url, series)) >= from + 2, 10_000);
      }),
    );
  const register = async (socket: Socket, body: Json) => (await socket.timeout(5_000).emitWithAck('register_push', body)) as Json;
  const subscribed = async (socket: Socket): Promise<TestSubscription> => {
    const sub = service.subscribe();
    expect(await register(socket, { provider: 'webpush', subscription: sub.json })).toEqual({ ok: true });
    return sub;
  };
  const offline = async (socket: Socket, deviceId: string) => {
    socket.disconnect();
    await waitFor(async () => (await getJson<Json>(a.url, `/v1/devices/${deviceId}`)).online === false);
  };
  const publish = async (json: Json, app = b) => {
    const res = await api(app.url, '/v1/notifications', { method: 'POST', json });
    expect(res.status).toBe(202);
    return (await res.json()) as { id: string; online: number; queued: number };
  };
  const target = async (id: string, deviceId: string) =>
    ((await getJson<Json>(a.url, `/v1/notifications/${id}`)).targets as Json[]).find((t) => t.deviceId === deviceId)!;
  const fallbackOf = async (id: string, deviceId: string) => {
    let t: Json = {};
    await waitFor(async () => (t = await target(id, deviceId)).fallback !== undefined, 10_000);
    return t.fallback as Json;
  };
  /** The notification's events on the pull API, once what was recorded before the call shows there. */
  const eventsOf = async (notificationId: string): Promise<[string, Json][]> => {
    await eventsSettled();
    const events: EventEnvelope[] = [];
    for (let after = ''; ; ) {
      const page = await getJson<{ events: EventEnvelope[]; next: string }>(a.url, `/v1/events?types=notification.*&limit=1000${after}`);
      if (page.events.length === 0) break;
      events.push(...page.events);
      after = `&after=${page.next}`;
    }
    return events.filter((e) => e.data.notificationId === notificationId).map((e) => [e.type, e.data]);
  };
  const pushesTo = (sub: TestSubscription) => service.receivedFor(sub.id);

  beforeAll(async () => {
    [service, apns, fcm] = await Promise.all([WebPushTestServer.start(), ApnsTestServer.start({ key: apnsKey, ...apnsIdentity }), FcmTestServer.start()]);
    // In-process gateways trust the local service's certificate as NODE_EXTRA_CA_CERTS would make a process do.
    trustTestCa();
    const vapid = webpush.generateVAPIDKeys();
    const env = {
      ...(withRedis ? { REDIS_URL: testRedisUrl(), REDIS_PREFIX: prefix } : { REDIS_URL: undefined }),
      ACK_TIMEOUT_MS: String(ACK_MS),
      SWEEP_INTERVAL_MS: '100',
      WEBPUSH_VAPID_PUBLIC_KEY: vapid.publicKey,
      WEBPUSH_VAPID_PRIVATE_KEY: vapid.privateKey,
      WEBPUSH_SUBJECT: 'mailto:ops@example.com',
      WEBPUSH_ENDPOINT_HOSTS: '127.0.0.1',
      APNS_KEY: apnsKey,
      APNS_KEY_ID: apnsIdentity.keyId,
      APNS_TEAM_ID: apnsIdentity.teamId,
      APNS_TOPIC: apnsIdentity.topic,
      APNS_URL: apns.url,
      FCM_SERVICE_ACCOUNT: JSON.stringify(fcm.serviceAccount()),
      FCM_URL: fcm.url,
      PUSH_MAX_ATTEMPTS: '3',
      PUSH_RETRY_BASE_MS: '50',
    };
    a = await startTestApp({ ...env, INSTANCE_ID: 'fb-a' }, clock);
    b = withRedis ? await startTestApp({ ...env, INSTANCE_ID: 'fb-b' }, clock) : a;
    expect(a.config.redis?.mode).toBe(withRedis ? (testClusterNodes() ? 'cluster' : 'url') : undefined);
  }, 30_000);
  afterEach(() => {
    sockets.splice(0).forEach((s) => s.disconnect());
    service.script.down(false);
  });
  afterAll(async () => {
    await Promise.all(apps().map((app) => app && pushesSettled(app.url).catch(() => undefined)));
    for (const app of apps()) await app?.close();
    await Promise.all([service?.close(), apns?.close(), fcm?.close()]);
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  it('offline at publish: pushed natively at once with the notification as the socket carries it; the socket still delivers it on reconnect, same id', async () => {
    const { socket } = await device('fb-off');
    const sub = await subscribed(socket);
    await offline(socket, 'fb-off');
    const answer = await publish({ deviceIds: ['fb-off'], title: 'Hi', data: { n: 1 }, ttl: 60, fallback: 'offline' });
    expect(answer).toMatchObject({ online: 0, queued: 1 });
    await waitFor(() => pushesTo(sub).length === 1, 10_000);
    const [push] = pushesTo(sub);
    expect(push!.problems).toEqual([]);
    expect(push!.payload).toEqual({ id: answer.id, title: 'Hi', data: { n: 1 }, createdAt: clock.now(), expiresAt: clock.now() + 60_000 });
    expect(Number(push!.headers.ttl)).toBe(60);
    expect(await fallbackOf(answer.id, 'fb-off')).toEqual({ provider: 'webpush', status: 'sent', at: clock.now() });
    const again = await device('fb-off');
    await waitFor(() => again.received.length === 1);
    expect(again.received[0]!.id).toBe(answer.id);
    expect(pushesTo(sub)).toHaveLength(1);
    // The registration outlives the sessions: it is the device's.
    expect(await getJson<Json>(b.url, '/v1/devices/fb-off')).toMatchObject({ online: true, push: { provider: 'webpush' } });
  });

  it('unacked: a device that does not ack within ACK_TIMEOUT_MS is pushed natively once, by whichever instance claims the deadline; one unacked event', async () => {
    const { socket, received } = await device('fb-slow', { ack: false });
    const sub = await subscribed(socket);
    const answer = await publish({ deviceIds: ['fb-slow'], data: { n: 2 }, ttl: 60, fallback: 'unacked' });
    expect(answer).toMatchObject({ online: 1 });
    await waitFor(() => received.length === 1);
    clock.advance(ACK_MS - 1);
    await deadlineSweepsRan();
    expect(pushesTo(sub)).toEqual([]);
    expect(await eventsOf(answer.id)).toEqual([]);
    clock.advance(1);
    const deadline = clock.now();
    await waitFor(() => pushesTo(sub).length === 1, 10_000);
    expect(pushesTo(sub)[0]!.payload).toMatchObject({ id: answer.id, data: { n: 2 } });
    // Sent by the first sweep at the deadline, on the gateway's clock (it did not move since).
    expect(await fallbackOf(answer.id, 'fb-slow')).toEqual({ provider: 'webpush', status: 'sent', at: deadline });
    // Both instances keep sweeping: still one push and one event, sent by one of them.
    await deadlineSweepsRan();
    expect(pushesTo(sub)).toHaveLength(1);
    const sent = 'push_gateway_push_fallbacks_total{trigger="unacked",provider="webpush",status="sent",reason="none"}';
    let total = 0;
    for (const app of apps()) total += await metric(app.url, sent);
    expect(total).toBe(1);
    expect(await eventsOf(answer.id)).toEqual([['notification.unacked', { notificationId: answer.id, deviceId: 'fb-slow', userId: 'fb-user' }]]);
  });

  it('acked just in time: no push and no unacked event for it, while a target of the same publish that stays silent gets both', async () => {
    const quick = await device('fb-quick', { ack: false });
    const silent = await device('fb-silent', { ack: false });
    const quickSub = await subscribed(quick.socket);
    const silentSub = await subscribed(silent.socket);
    const answer = await publish({ deviceIds: ['fb-quick', 'fb-silent'], data: { n: 3 }, ttl: 60, fallback: 'unacked' });
    await waitFor(() => quick.acks.has(answer.id) && silent.acks.has(answer.id));
    clock.advance(ACK_MS - 1);
    quick.acks.get(answer.id)!();
    await waitFor(async () => (await target(answer.id, 'fb-quick')).status === 'delivered');
    clock.advance(1);
    await waitFor(() => pushesTo(silentSub).length === 1, 10_000);
    await deadlineSweepsRan();
    expect(pushesTo(quickSub)).toEqual([]);
    expect(await target(answer.id, 'fb-quick')).not.toHaveProperty('fallback');
    expect((await eventsOf(answer.id)).filter(([t]) => t === 'notification.unacked').map(([, d]) => d.deviceId)).toEqual(['fb-silent']);
  });

  it('ttl expiry: notification.expired with reason ttl for a target still pending, once, within the bound after its ttl ran out', async () => {
    const { socket } = await device('fb-ttl');
    await offline(socket, 'fb-ttl');
    const answer = await publish({ deviceIds: ['fb-ttl'], data: { n: 4 }, ttl: 5 });
    clock.advance(5_000);
    const expiredAt = clock.now();
    await waitFor(async () => (await eventsOf(answer.id)).length > 0, 10_000);
    await deadlineSweepsRan();
    // Recorded by the first sweep at that moment on the gateway's clock.
    const page = await getJson<{ events: EventEnvelope[] }>(a.url, '/v1/events?types=notification.expired&limit=1000');
    expect(page.events.find((e) => e.data.notificationId === answer.id)?.timestamp).toBe(expiredAt);
    expect(await eventsOf(answer.id)).toEqual([['notification.expired', { notificationId: answer.id, deviceId: 'fb-ttl', userId: 'fb-user', reason: 'ttl' }]]);
    expect(await target(answer.id, 'fb-ttl')).toEqual({ deviceId: 'fb-ttl', status: 'expired', updatedAt: clock.now() });
  });

  it('no_target: a device without a registration; the inbox still delivers on reconnect', async () => {
    const { socket } = await device('fb-none');
    await offline(socket, 'fb-none');
    const answer = await publish({ deviceIds: ['fb-none'], data: { n: 5 }, ttl: 60, fallback: 'offline' });
    expect(await fallbackOf(answer.id, 'fb-none')).toEqual({ status: 'no_target', at: clock.now() });
    expect(await metric(b.url, 'push_gateway_push_fallbacks_total{trigger="offline",provider="none",status="no_target",reason="none"}')).toBeGreaterThanOrEqual(1);
    const again = await device('fb-none');
    await waitFor(() => again.received.some((n) => n.id === answer.id));
  });

  it('gone: the push service says the subscription is gone (410): failed/gone and the registration is deleted', async () => {
    const { socket } = await device('fb-gone');
    const sub = await subscribed(socket);
    expect(await getJson<Json>(a.url, '/v1/devices/fb-gone')).toMatchObject({ push: { provider: 'webpush' } });
    service.unsubscribe(sub.id);
    await offline(socket, 'fb-gone');
    const answer = await publish({ deviceIds: ['fb-gone'], data: { n: 6 }, ttl: 60, fallback: 'offline' });
    expect(await fallbackOf(answer.id, 'fb-gone')).toEqual({ provider: 'webpush', status: 'failed', reason: 'gone', at: clock.now() });
    expect(await getJson<Json>(a.url, '/v1/devices/fb-gone')).not.toHaveProperty('push');
    // The next one finds no registration.
    const next = await publish({ deviceIds: ['fb-gone'], data: { n: 7 }, ttl: 60, fallback: 'offline' });
    expect(await fallbackOf(next.id, 'fb-gone')).toMatchObject({ status: 'no_target' });
  });

  it('provider down: every attempt dropped, retried, then failed/unavailable; the registration stays', async () => {
    const { socket } = await device('fb-down');
    const sub = await subscribed(socket);
    await offline(socket, 'fb-down');
    service.script.down();
    const answer = await publish({ deviceIds: ['fb-down'], data: { n: 8 }, ttl: 60, fallback: 'offline' });
    expect(await fallbackOf(answer.id, 'fb-down')).toMatchObject({ provider: 'webpush', status: 'failed', reason: 'unavailable' });
    expect(pushesTo(sub)).toHaveLength(3); // PUSH_MAX_ATTEMPTS
    expect(await getJson<Json>(a.url, '/v1/devices/fb-down')).toMatchObject({ push: { provider: 'webpush' } });
  });

  it('APNs and FCM: the same fallback through the other providers (checked by their local servers); an FCM UNREGISTERED token is gone', async () => {
    const phone = await device('fb-ios');
    const android = await device('fb-android');
    const gone = await device('fb-android-gone');
    const apnsToken = 'c0ffee'.repeat(10) + 'abcd';
    const fcmToken = `fcm:${'a'.repeat(150)}`;
    const goneToken = `fcm:${'b'.repeat(150)}`;
    expect(await register(phone.socket, { provider: 'apns', token: apnsToken })).toEqual({ ok: true });
    expect(await register(android.socket, { provider: 'fcm', token: fcmToken })).toEqual({ ok: true });
    expect(await register(gone.socket, { provider: 'fcm', token: goneToken })).toEqual({ ok: true });
    fcm.unregister(goneToken);
    for (const [d, id] of [[phone, 'fb-ios'], [android, 'fb-android'], [gone, 'fb-android-gone']] as const) await offline(d.socket, id);
    const answer = await publish({ deviceIds: ['fb-ios', 'fb-android', 'fb-android-gone'], title: 'Native', body: 'both', data: { n: 9 }, ttl: 60, fallback: 'offline' });
    expect(await fallbackOf(answer.id, 'fb-ios')).toEqual({ provider: 'apns', status: 'sent', at: clock.now() });
    expect(await fallbackOf(answer.id, 'fb-android')).toEqual({ provider: 'fcm', status: 'sent', at: clock.now() });
    expect(await fallbackOf(answer.id, 'fb-android-gone')).toEqual({ provider: 'fcm', status: 'failed', reason: 'gone', at: clock.now() });
    const toPhone = apns.received.filter((r) => r.deviceToken === apnsToken);
    expect(toPhone).toHaveLength(1);
    expect(toPhone[0]!.problems).toEqual([]);
    expect(JSON.stringify(toPhone[0]!.body)).toContain(answer.id);
    const toAndroid = fcm.received.filter((r) => (r.message as { token?: string } | undefined)?.token === fcmToken);
    expect(toAndroid).toHaveLength(1);
    expect(toAndroid[0]!.problems).toEqual([]);
    expect(JSON.stringify(toAndroid[0]!.message)).toContain(answer.id);
    expect(await getJson<Json>(a.url, '/v1/devices/fb-ios')).toMatchObject({ push: { provider: 'apns' } });
    expect(await getJson<Json>(a.url, '/v1/devices/fb-android-gone')).not.toHaveProperty('push');
  });

  it('register_push: refuses what is not a reachable push target (invalid_push_target); shows only the provider; unregister_push deletes it', async () => {
    const { socket } = await device('fb-reg');
    const sub = service.subscribe().json;
    const refused = async (body: unknown) => ((await register(socket, body as Json)).error as Json | undefined)?.code;
    expect(await refused({ provider: 'webpush', subscription: { ...sub, endpoint: sub.endpoint.replace('https:', 'http:') } })).toBe('invalid_push_target');
    expect(await refused({ provider: 'webpush', subscription: { ...sub, endpoint: 'https://evil.example.com/push/1' } })).toBe('invalid_push_target');
    expect(await refused({ provider: 'webpush', subscription: { ...sub, keys: { ...sub.keys, p256dh: Buffer.alloc(65, 4).toString('base64url') } } })).toBe('invalid_push_target');
    expect(await refused({ provider: 'webpush', subscription: { ...sub, keys: { ...sub.keys, auth: 'c2hvcnQ' } } })).toBe('invalid_push_target');
    expect(await refused({ provider: 'apns', token: 'not-hex' })).toBe('invalid_push_target');
    expect(await refused({ provider: 'fcm' })).toBe('invalid_push_target');
    expect(await refused({ provider: 'carrier-pigeon', token: 'x' })).toBe('invalid_push_target');
    expect(await refused('webpush')).toBe('invalid_push_target');
    expect(await getJson<Json>(a.url, '/v1/devices/fb-reg')).not.toHaveProperty('push');
    expect(await register(socket, { provider: 'apns', token: 'ab'.repeat(32) })).toEqual({ ok: true });
    expect(await register(socket, { provider: 'webpush', subscription: sub })).toEqual({ ok: true }); // replaces it
    const view = await (await api(b.url, '/v1/devices/fb-reg')).text();
    expect(JSON.parse(view)).toMatchObject({ push: { provider: 'webpush' } });
    expect(view).not.toContain(sub.keys.auth);
    expect(view).not.toContain('/push/');
    expect(((await getJson<Json>(b.url, '/v1/users/fb-user/devices')).devices as Json[]).find((d) => d.deviceId === 'fb-reg')).toMatchObject({ push: { provider: 'webpush' } });
    expect(await socket.timeout(5_000).emitWithAck('unregister_push', {})).toEqual({ ok: true });
    expect(await getJson<Json>(a.url, '/v1/devices/fb-reg')).not.toHaveProperty('push');
  });

  it('POST /v1/notifications refuses an unknown fallback with the field and why', async () => {
    const res = await api(a.url, '/v1/notifications', { method: 'POST', json: { deviceIds: ['x'], data: {}, fallback: 'always' } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as Json).fields).toEqual([{ field: 'fallback', reasons: ['fallback must be one of "none", "offline", "unacked"'] }]);
  });
});
