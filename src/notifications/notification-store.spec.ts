import Redis from 'ioredis';
import { FakeClock } from '../../test/support/fake-clock';
import { deleteKeys, keysWithoutTtl, testRedisUrl, uniquePrefix } from '../../test/support/redis';
import { NotificationPayload } from '../channel/socket-events';
import { MemoryPresenceStore } from '../presence/memory-presence.store';
import { PresenceStore } from '../presence/presence.store';
import { RedisPresenceStore } from '../presence/redis-presence.store';
import { MemoryNotificationStore } from './memory-notification.store';
import { NotificationStore } from './notification.store';
import { PublishRequest } from './notification.types';
import { RedisNotificationStore } from './redis-notification.store';

const DAY = 86_400_000;
const RETENTION = DAY;

/**
 * `unbounded` counts what the store would keep with no end in sight once every window has passed
 * on the test's clock: entries still held by the embedded store, keys without a TTL in Redis.
 */
function notificationStoreCases(
  make: () => { presence: PresenceStore; store: NotificationStore },
  unbounded: (store: NotificationStore) => Promise<number>,
) {
  let presence: PresenceStore;
  let store: NotificationStore;
  let clock: FakeClock;
  let n = 0;

  const online = (deviceId: string) =>
    presence.connect({ deviceId, sessionId: `s-${deviceId}`, userId: 'u', instanceId: 'gw', now: clock.now(), interval: 1_000, ttl: 60_000 });
  const payload = (extra: Partial<NotificationPayload> = {}): NotificationPayload => ({
    id: `n${++n}-${Math.random().toString(36).slice(2, 8)}`,
    data: { n },
    createdAt: clock.now(),
    ...extra,
  });
  const publish = (deviceIds: string[], p = payload(), extra: Partial<PublishRequest> = {}) =>
    store.publish({
      payload: p,
      payloadJson: JSON.stringify(p),
      deviceIds,
      effectiveExpiresAt: clock.now() + 10_000,
      keepOffline: true,
      maxInbox: 1_000,
      retentionMs: RETENTION,
      now: clock.now(),
      ...extra,
    });
  const pendingIds = async (deviceId: string) => (await store.pending(deviceId, clock.now(), 100)).map((x) => x.payload.id);
  const statusOf = async (id: string, deviceId: string) => (await store.status(id, clock.now()))?.targets.find((t) => t.deviceId === deviceId);

  beforeEach(() => {
    ({ presence, store } = make());
    clock = new FakeClock();
  });

  it('sends to online devices, queues for offline ones, and records a pending target for each', async () => {
    await online('on');
    const p = payload();
    const result = await publish(['on', 'off'], p);
    expect(result).toEqual({ kind: 'accepted', answer: { id: p.id, online: 1, queued: 1 }, online: [{ deviceId: 'on', instanceId: 'gw' }], evicted: 0 });
    expect(await store.status(p.id, clock.now())).toEqual({
      id: p.id,
      createdAt: p.createdAt,
      targets: [
        { deviceId: 'off', status: 'pending', updatedAt: clock.now() },
        { deviceId: 'on', status: 'pending', updatedAt: clock.now() },
      ],
    });
    expect(await store.pending('off', clock.now(), 100)).toEqual([{ payload: p, bytes: Buffer.byteLength(JSON.stringify(p)) }]);
  });

  it('marks a target delivered on ack and never hands it out again', async () => {
    const p = payload({ expiresAt: clock.now() + 10_000 });
    await publish(['d'], p);
    clock.advance(5);
    expect(await store.ack(p, 'd', clock.now())).toBe(true);
    expect(await store.ack(p, 'd', clock.now())).toBe(false);
    expect(await statusOf(p.id, 'd')).toEqual({ deviceId: 'd', status: 'delivered', updatedAt: clock.now() });
    expect(await store.pending('d', clock.now(), 100)).toEqual([]);
    expect((await store.status(p.id, clock.now()))?.expiresAt).toBe(p.expiresAt);
  });

  it('drops, without queueing, a ttl-0 notification for an offline device', async () => {
    const p = payload();
    expect(await publish(['off'], p, { keepOffline: false })).toMatchObject({ answer: { online: 0, queued: 0 } });
    expect(await statusOf(p.id, 'off')).toEqual({ deviceId: 'off', status: 'expired', updatedAt: clock.now(), reason: 'offline' });
    expect(await store.pending('off', clock.now(), 100)).toEqual([]);
  });

  it('hands out pending notifications oldest first, and never an expired one', async () => {
    const first = payload();
    const second = payload();
    const shortLived = payload();
    await publish(['d'], first);
    await publish(['d'], second);
    await publish(['d'], shortLived, { effectiveExpiresAt: clock.now() + 100 });
    expect(await pendingIds('d')).toEqual([first.id, second.id, shortLived.id]);
    expect((await store.pending('d', clock.now(), 2)).map((x) => x.payload.id)).toEqual([first.id, second.id]);
    clock.advance(100);
    expect(await pendingIds('d')).toEqual([first.id, second.id]);
    expect(await statusOf(shortLived.id, 'd')).toMatchObject({ status: 'expired' });
    clock.advance(10_000);
    expect(await store.pending('d', clock.now(), 100)).toEqual([]);
    expect(await statusOf(first.id, 'd')).toMatchObject({ status: 'expired' });
  });

  it('replaces a pending notification with a newer one of the same collapse key, per device', async () => {
    const old = payload({ collapseKey: 'score' });
    const fresh = payload({ collapseKey: 'score' });
    await publish(['a', 'b'], old);
    await store.ack(old, 'b', clock.now()); // b already has it: nothing to replace there
    clock.advance(10);
    await publish(['a', 'b'], fresh);
    expect(await statusOf(old.id, 'a')).toEqual({ deviceId: 'a', status: 'replaced', updatedAt: clock.now() });
    expect(await statusOf(old.id, 'b')).toMatchObject({ status: 'delivered' });
    expect(await pendingIds('a')).toEqual([fresh.id]);
    expect(await pendingIds('b')).toEqual([fresh.id]);
  });

  it('evicts the oldest pending notification past the inbox bound', async () => {
    const ps = [payload(), payload(), payload()];
    const results = [];
    for (const p of ps) results.push(await publish(['d'], p, { maxInbox: 2 }));
    expect(results.map((r) => (r.kind === 'accepted' ? r.evicted : -1))).toEqual([0, 0, 1]);
    const [oldest, kept, newest] = ps as [NotificationPayload, NotificationPayload, NotificationPayload];
    expect(await statusOf(oldest.id, 'd')).toEqual({ deviceId: 'd', status: 'expired', updatedAt: clock.now(), reason: 'inbox_full' });
    expect(await pendingIds('d')).toEqual([kept.id, newest.id]);
  });

  it('returns the first answer for a retried idempotency key and refuses a different body under it', async () => {
    await online('d');
    const idempotency = { key: 'k:retry-1', fingerprint: 'f1', windowMs: 300_000 };
    const p = payload();
    const first = await publish(['d', 'off'], p, { idempotency });
    expect(first.kind).toBe('accepted');
    // The replay also says what still has to reach devices online now: the first attempt's
    // notification, for its pending targets that are online (a 503'd first attempt may never have sent it).
    const again = await publish(['d'], payload(), { idempotency });
    expect(again).toEqual({
      kind: 'replay',
      answer: first.kind === 'accepted' ? first.answer : null,
      pending: { notification: { payload: p, bytes: Buffer.byteLength(JSON.stringify(p)) }, online: [{ deviceId: 'd', instanceId: 'gw' }] },
    });
    expect(await store.pending('d', clock.now(), 100)).toHaveLength(1);
    await store.ack(p, 'd', clock.now());
    expect(await publish(['d'], payload(), { idempotency })).toEqual({ kind: 'replay', answer: first.kind === 'accepted' ? first.answer : null });
    expect(await publish(['d'], payload(), { idempotency: { ...idempotency, fingerprint: 'f2' } })).toEqual({ kind: 'conflict' });
  });

  it('ends an idempotency window by the caller clock: the key is free again afterwards', async () => {
    const idempotency = { key: 'k:window', fingerprint: 'f1', windowMs: 300_000 };
    expect((await publish(['d'], payload(), { idempotency })).kind).toBe('accepted');
    clock.advance(299_999);
    expect((await publish(['d'], payload(), { idempotency: { ...idempotency, fingerprint: 'f2' } })).kind).toBe('conflict');
    clock.advance(1);
    expect((await publish(['d'], payload(), { idempotency: { ...idempotency, fingerprint: 'f2' } })).kind).toBe('accepted');
  });

  it('holds nothing without an end: inboxes, receipts and idempotency records end with time', async () => {
    await online('on');
    const idempotency = { key: 'k:bound', fingerprint: 'f', windowMs: 300_000 };
    await publish(['on', 'off'], payload({ collapseKey: 'c' }), { idempotency });
    await publish(['off'], payload());
    clock.advance(Math.max(10_000 + RETENTION, idempotency.windowMs));
    expect(await store.pending('off', clock.now(), 100)).toEqual([]);
    expect(await unbounded(store)).toBe(0);
  });

  it('forgets a notification once its retention after expiry has passed', async () => {
    const p = payload();
    await publish(['d'], p);
    clock.advance(10_000 + RETENTION - 1);
    expect(await store.status(p.id, clock.now())).not.toBeNull();
    clock.advance(1);
    expect(await store.status(p.id, clock.now())).toBeNull();
    expect(await store.status('unknown', clock.now())).toBeNull();
  });
}

describe('MemoryNotificationStore', () => {
  notificationStoreCases(
    () => {
      const presence = new MemoryPresenceStore(30 * DAY);
      return { presence, store: new MemoryNotificationStore(presence) };
    },
    async (store) => (store as MemoryNotificationStore).footprint,
  );
});

describe('RedisNotificationStore (real Redis)', () => {
  const redis = new Redis(testRedisUrl());
  const prefix = uniquePrefix('notify');
  afterEach(() => deleteKeys(redis, prefix));
  afterAll(() => redis.quit());

  notificationStoreCases(
    () => ({ presence: new RedisPresenceStore(redis, prefix, 30 * DAY), store: new RedisNotificationStore(redis, prefix) }),
    // Presence keys of the online device are the presence store's; notif:seq is one counter.
    () => keysWithoutTtl(redis, prefix, ['notif:seq', 'device:on', 'user:u:devices', 'presence:expiry:gw', 'instances']),
  );

  it('writes inboxes and receipts with TTLs, so nothing outlives its notification', async () => {
    const store = new RedisNotificationStore(redis, prefix);
    const now = Date.now();
    const p: NotificationPayload = { id: 'ttl-1', data: 1, createdAt: now, collapseKey: 'c' };
    await store.publish({ payload: p, payloadJson: JSON.stringify(p), deviceIds: ['d'], effectiveExpiresAt: now + 60_000, keepOffline: true, maxInbox: 10, retentionMs: DAY, now });
    expect(await redis.zrange(`${prefix}inbox:d`, '0', '-1')).toEqual(['ttl-1']);
    expect(await redis.pttl(`${prefix}inbox:d`)).toBeGreaterThan(59_000);
    expect(await redis.pttl(`${prefix}inbox:d:collapse`)).toBeGreaterThan(59_000);
    expect(await redis.pttl(`${prefix}notif:ttl-1`)).toBeGreaterThan(DAY);
  });
});
