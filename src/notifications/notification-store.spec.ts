import Redis from 'ioredis';
import { FakeClock } from '../../test/support/fake-clock';
import { deleteKeys, keysWithoutTtl, testRedisUrl, uniquePrefix } from '../../test/support/redis';
import { NotificationPayload } from '../channel/socket-events';
import { EventLog } from '../events/event-log';
import { RedisEventLog } from '../events/redis-event-log';
import { MemoryPresenceStore } from '../presence/memory-presence.store';
import { PresenceStore } from '../presence/presence.store';
import { RedisPresenceStore } from '../presence/redis-presence.store';
import { MemoryNotificationStore } from './memory-notification.store';
import { DUE_BATCH, NotificationStore } from './notification.store';
import { PublishRequest } from './notification.types';
import { RedisNotificationStore } from './redis-notification.store';
import { RedisPushRegistrationStore } from '../push/push-registration.store';

let redisClient: Redis;
const prefixOf = (store: RedisNotificationStore) => (store as unknown as { prefix: string }).prefix;

const DAY = 86_400_000;
const RETENTION = DAY;
const ACK_MS = 3_000;
const LEASE_MS = 15_000;

/**
 * `unbounded` counts what the store would keep with no end in sight once every window has passed
 * on the test's clock: entries still held by the embedded store, keys without a TTL in Redis.
 */
function notificationStoreCases(
  make: () => { presence: PresenceStore; store: NotificationStore; events: EventLog },
  unbounded: (store: NotificationStore) => Promise<number>,
) {
  let presence: PresenceStore;
  let store: NotificationStore;
  let events: EventLog;
  /** notification.* events recorded since the last call, as [type, data]. */
  let seen: string | undefined;
  const newEvents = async (): Promise<[string, Record<string, unknown>][]> => {
    const batch = await events.read(seen, 1_000, clock.now());
    if (batch.length) seen = batch[batch.length - 1]!.id;
    return batch.filter((e) => e.type.startsWith('notification.')).map((e) => [e.type, e.data]);
  };
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
      ackDeadlineAt: clock.now() + ACK_MS,
      fallback: 'none',
      leaseMs: LEASE_MS,
      ...extra,
    });
  const pendingIds = async (deviceId: string) => (await store.pending(deviceId, clock.now(), 100)).map((x) => x.payload.id);
  const statusOf = async (id: string, deviceId: string) => (await store.status(id, clock.now()))?.targets.find((t) => t.deviceId === deviceId);

  beforeEach(() => {
    ({ presence, store, events } = make());
    clock = new FakeClock();
    seen = undefined;
  });

  it('sends to online devices, queues for offline ones, and records a pending target for each', async () => {
    await online('on');
    const p = payload();
    const result = await publish(['on', 'off'], p);
    expect(result).toEqual({ kind: 'accepted', answer: { id: p.id, online: 1, queued: 1 }, online: [{ deviceId: 'on', instanceId: 'gw' }], evicted: 0, fallback: [] });
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
    await store.claimDue(clock.now(), 100, LEASE_MS); // deadlines leave the index when they fire
    expect(await unbounded(store)).toBe(0);
  });

  describe('notification events, recorded with the change', () => {
    const ev = (type: string, notificationId: string, deviceId: string, userId: string | null, reason?: string) =>
      [`notification.${type}`, { notificationId, deviceId, userId, ...(reason ? { reason } : {}) }] as [string, Record<string, unknown>];

    it('delivered: once per target, on the ack that changed its status; userId null for a device never seen', async () => {
      await online('on');
      const p = payload();
      await publish(['on', 'off'], p);
      await newEvents();
      expect(await store.ack(p, 'on', clock.now())).toBe(true);
      expect(await store.ack(p, 'on', clock.now())).toBe(false);
      expect(await store.ack(p, 'stranger', clock.now())).toBe(false);
      expect(await store.ack(p, 'off', clock.now())).toBe(true);
      expect(await store.ack(payload(), 'on', clock.now())).toBe(false); // never published
      expect(await newEvents()).toEqual([ev('delivered', p.id, 'on', 'u'), ev('delivered', p.id, 'off', null)]);
    });

    it('delivered: a batch of acks records each as a lone ack would, in order; the same target twice counts once', async () => {
      await online('on');
      const p = payload({ collapseKey: 'ck' });
      const q = payload();
      await publish(['on', 'off'], p);
      await publish(['on'], q);
      await newEvents();
      clock.advance(7);
      const acks = [
        { payload: p, deviceId: 'on' },
        { payload: q, deviceId: 'on' },
        { payload: p, deviceId: 'on' }, // the same ack again (a late copy)
        { payload: p, deviceId: 'stranger' },
        { payload: p, deviceId: 'off' },
      ];
      expect(await store.ackMany(acks, clock.now())).toEqual([true, true, false, false, true]);
      expect(await store.ackMany([], clock.now())).toEqual([]);
      expect(await newEvents()).toEqual([ev('delivered', p.id, 'on', 'u'), ev('delivered', q.id, 'on', 'u'), ev('delivered', p.id, 'off', null)]);
      expect(await statusOf(q.id, 'on')).toEqual({ deviceId: 'on', status: 'delivered', updatedAt: clock.now() });
      expect(await store.pending('on', clock.now(), 100)).toEqual([]);
      // Its collapse key no longer names it: a newer one with the key is simply queued, nothing is replaced.
      const newer = payload({ collapseKey: 'ck' });
      await publish(['on'], newer);
      expect(await statusOf(p.id, 'on')).toMatchObject({ status: 'delivered' });
      expect((await store.pending('on', clock.now(), 100)).map((n) => n.payload.id)).toEqual([newer.id]);
    });

    it('expired offline: each target offline at a ttl-0 publish, none for an online one, none on a replay', async () => {
      await online('on');
      await online('gone');
      await presence.disconnect([{ deviceId: 'gone', sessionId: 's-gone', userId: 'u', instanceId: 'gw' }], clock.now(), 'client_close');
      await newEvents();
      const p = payload();
      const idempotency = { key: 'k:offline', fingerprint: 'f', windowMs: 300_000 };
      await publish(['on', 'gone', 'never'], p, { keepOffline: false, idempotency });
      expect((await publish(['on', 'gone', 'never'], p, { keepOffline: false, idempotency })).kind).toBe('replay');
      expect(await newEvents()).toEqual([ev('expired', p.id, 'gone', 'u', 'offline'), ev('expired', p.id, 'never', null, 'offline')]);
      expect(await publish(['gone'], payload())).toMatchObject({ answer: { queued: 1 } }); // kept for it (ttl > 0): no event
      expect(await newEvents()).toEqual([]);
    });

    it('expired inbox_full: each live notification evicted from a full inbox, none for one already past its ttl', async () => {
      await online('on');
      const [a, b, c] = [payload(), payload(), payload()] as [NotificationPayload, NotificationPayload, NotificationPayload];
      await publish(['on'], a, { maxInbox: 2 });
      await publish(['on'], b, { maxInbox: 2 });
      expect(await newEvents()).toEqual([]);
      await publish(['on'], c, { maxInbox: 2 });
      expect(await newEvents()).toEqual([ev('expired', a.id, 'on', 'u', 'inbox_full')]);
      // One past its ttl was not evicted by the next publish: it had expired already.
      const shortLived = payload();
      await store.ack(b, 'on', clock.now());
      await store.ack(c, 'on', clock.now());
      await publish(['on'], shortLived, { maxInbox: 2, effectiveExpiresAt: clock.now() + 100 });
      await publish(['on'], payload(), { maxInbox: 2 });
      clock.advance(100);
      await newEvents();
      expect(await publish(['on'], payload(), { maxInbox: 2 })).toMatchObject({ evicted: 0 });
      expect(await newEvents()).toEqual([]);
      expect(await statusOf(shortLived.id, 'on')).toEqual({ deviceId: 'on', status: 'expired', updatedAt: clock.now() });
    });

    it('unacked: fired by the ack deadline, once per target while it waits for delivery (ttl-0 ones past their ack window too), never after delivered, replaced or evicted', async () => {
      await online('on');
      const p = payload();
      await publish(['on'], p);
      await newEvents();
      clock.advance(ACK_MS - 1);
      expect(await store.claimDue(clock.now(), 100, LEASE_MS)).toEqual({ claimed: 0, unacked: 0, expired: 0, jobs: [], more: false });
      clock.advance(1);
      expect(await store.claimDue(clock.now(), 100, LEASE_MS)).toMatchObject({ claimed: 1, unacked: 1, jobs: [] });
      // Sent again from the inbox: a deadline of its own, but the target was reported already.
      await store.armAckDeadlines([{ id: p.id, deviceId: 'on' }], clock.now() + ACK_MS, clock.now());
      clock.advance(ACK_MS);
      expect(await store.claimDue(clock.now(), 100, LEASE_MS)).toMatchObject({ claimed: 1, unacked: 0 });
      clock.advance(5);
      expect(await store.ack(p, 'on', clock.now())).toBe(true); // a late ack
      expect(await newEvents()).toEqual([ev('unacked', p.id, 'on', 'u'), ev('delivered', p.id, 'on', 'u')]);

      const delivered = payload();
      await publish(['on'], delivered);
      await store.ack(delivered, 'on', clock.now());
      const replaced = payload({ collapseKey: 'k' });
      await publish(['on'], replaced);
      await publish(['on'], payload({ collapseKey: 'k' }));
      const evicted = payload();
      await publish(['on'], evicted);
      const last = payload();
      await publish(['on'], last, { maxInbox: 1 });
      await store.ack(last, 'on', clock.now());
      await newEvents();
      clock.advance(ACK_MS);
      // The replacing notification is the only one still waiting.
      expect(await store.claimDue(clock.now(), 100, LEASE_MS)).toMatchObject({ claimed: 5, unacked: 0 });
      expect(await newEvents()).toEqual([]);

      const ttl0 = payload();
      await publish(['on'], ttl0, { keepOffline: false, effectiveExpiresAt: clock.now() + ACK_MS });
      clock.advance(ACK_MS); // its ack window (its effective expiry) ended: it reads expired, and is unacked
      expect(await store.claimDue(clock.now(), 100, LEASE_MS)).toMatchObject({ unacked: 1, expired: 1 });
      expect(await newEvents()).toEqual([ev('unacked', ttl0.id, 'on', 'u'), ev('expired', ttl0.id, 'on', 'u', 'ttl')]);
    });

    it('an ack before the deadline cancels it: no unacked, for the publish deadline and for a redelivery', async () => {
      await online('on');
      const p = payload();
      await publish(['on'], p);
      await store.armAckDeadlines([{ id: p.id, deviceId: 'on' }], clock.now() + ACK_MS, clock.now());
      clock.advance(ACK_MS - 1);
      await store.ack(p, 'on', clock.now());
      await newEvents();
      clock.advance(1);
      expect(await store.claimDue(clock.now(), 100, LEASE_MS)).toMatchObject({ claimed: 1, unacked: 0 }); // the redelivery's deadline left with the ack
      expect(await newEvents()).toEqual([]);
    });

    it('expired ttl: once per target still pending when its ttl ran out, from the index or from an inbox read, and it leaves the inbox', async () => {
      await online('on');
      const [a, b] = [payload({ collapseKey: 'c' }), payload()];
      await publish(['on', 'off', 'done'], a, { effectiveExpiresAt: clock.now() + 10_000 });
      await publish(['off'], b, { effectiveExpiresAt: clock.now() + 10_000 });
      await store.ack(a, 'done', clock.now());
      await newEvents();
      clock.advance(10_000);
      // 'off' reads the first of its inbox: a expires there (its event once), b is left to the index.
      expect(await store.pending('off', clock.now(), 1)).toEqual([]);
      expect(await newEvents()).toEqual([ev('expired', a.id, 'off', null, 'ttl')]);
      const claim = await store.claimDue(clock.now(), 100, LEASE_MS);
      expect(claim).toMatchObject({ unacked: 1, expired: 2 });
      expect((await newEvents()).filter(([t]) => t === 'notification.expired')).toEqual([
        ev('expired', a.id, 'on', 'u', 'ttl'),
        ev('expired', b.id, 'off', null, 'ttl'),
      ]);
      expect(await store.pending('on', clock.now(), 100)).toEqual([]);
      expect(await statusOf(a.id, 'on')).toEqual({ deviceId: 'on', status: 'expired', updatedAt: clock.now() });
      expect(await statusOf(a.id, 'done')).toMatchObject({ status: 'delivered' });
      expect(await store.claimDue(clock.now(), 100, LEASE_MS)).toMatchObject({ claimed: 0 });
    });

    it('bounds the work of one claim (an entry counts 1 plus its targets), oldest first, and hands each entry to one of racing claimants', async () => {
      for (let i = 0; i < 12; i++) await online(`d${i}`);
      const ids = [];
      for (let i = 0; i < 12; i++) {
        const p = payload();
        ids.push(p.id);
        await publish([`d${i}`], p, { effectiveExpiresAt: clock.now() + 60_000 });
        clock.advance(1);
      }
      await newEvents();
      clock.advance(ACK_MS);
      // Each ack deadline here is one target: 2 units, so a limit of 6 takes 3 entries.
      const claims = await Promise.all([0, 1, 2, 3, 4].map(() => store.claimDue(clock.now(), 6, LEASE_MS)));
      // (The store runs them one after another, in the order they were called.)
      expect(claims.map((c) => [c.claimed, c.more])).toEqual([[3, true], [3, true], [3, true], [3, false], [0, false]]);
      const unacked = (await newEvents()).filter(([t]) => t === 'notification.unacked').map(([, d]) => d.notificationId);
      expect(unacked).toEqual(ids);
    });
  });

  it('keeps one due entry per batch of DUE_BATCH targets, and a claim stops at its work limit with more to come', async () => {
    const devices = Array.from({ length: DUE_BATCH * 2 + 200 }, (_, i) => `big-${i}`);
    await Promise.all(devices.map((d) => online(d)));
    const p = payload();
    await publish(devices, p, { effectiveExpiresAt: clock.now() + 60_000 });
    clock.advance(ACK_MS);
    const first = await store.claimDue(clock.now(), 1_000, LEASE_MS);
    expect(first).toMatchObject({ claimed: 2, unacked: DUE_BATCH * 2, more: true });
    expect(await store.claimDue(clock.now(), 1_000, LEASE_MS)).toMatchObject({ claimed: 1, unacked: 200, more: false });
    expect(await store.claimDue(clock.now(), 1_000, LEASE_MS)).toMatchObject({ claimed: 0, more: false });
  });

  describe('native push fallback', () => {
    const reg = (deviceId: string) => JSON.stringify({ provider: 'fcm', token: `token-of-${deviceId}-${'x'.repeat(32)}` });
    const register = async (deviceId: string) => {
      const registration = reg(deviceId);
      if (store instanceof RedisNotificationStore) await new RedisPushRegistrationStore(redisClient, prefixOf(store)).register(deviceId, JSON.parse(registration), clock.now());
      else (presence as MemoryPresenceStore).setPushRegistration(deviceId, registration, clock.now());
    };

    it('offline: leases the offline targets to the publisher at once (ttl 0 and ttl > 0), with their registrations', async () => {
      await online('on');
      await online('gone');
      await presence.disconnect([{ deviceId: 'gone', sessionId: 's-gone', userId: 'u', instanceId: 'gw' }], clock.now(), 'client_close');
      await register('gone');
      const p = payload();
      const result = await publish(['on', 'gone', 'never'], p, { fallback: 'offline' });
      expect(result).toMatchObject({ kind: 'accepted', answer: { online: 1, queued: 2 } });
      const jobs = result.kind === 'accepted' ? result.fallback : [];
      expect(jobs).toEqual([
        { key: `p|${p.id}|2|o`, trigger: 'offline', notification: { payload: p, bytes: Buffer.byteLength(JSON.stringify(p)) }, targets: [{ deviceId: 'gone', registration: reg('gone') }, { deviceId: 'never' }] },
      ]);
      const ttl0 = payload();
      const dropped = await publish(['gone'], ttl0, { fallback: 'unacked', keepOffline: false });
      expect(dropped.kind === 'accepted' && dropped.fallback.map((j) => j.targets)).toEqual([[{ deviceId: 'gone', registration: reg('gone') }]]);
      // Leased: nobody else gets them before the lease ends, or at all once recorded.
      expect((await store.claimDue(clock.now(), 100, LEASE_MS)).jobs).toEqual([]);
      const at = clock.now();
      await store.recordFallback(jobs[0]!.key, [{ deviceId: 'gone', status: 'sent', provider: 'fcm', at, registration: reg('gone') }, { deviceId: 'never', status: 'no_target', at }], true);
      expect(await statusOf(p.id, 'gone')).toEqual({ deviceId: 'gone', status: 'pending', updatedAt: at, fallback: { status: 'sent', provider: 'fcm', at } });
      expect(await statusOf(p.id, 'never')).toMatchObject({ fallback: { status: 'no_target', at } });
      expect(await statusOf(p.id, 'on')).not.toHaveProperty('fallback');
      clock.advance(LEASE_MS);
      expect((await store.claimDue(clock.now(), 100, LEASE_MS)).jobs.map((j) => j.key)).toEqual([`p|${ttl0.id}|1|o`]); // its claimant never recorded it
    });

    it('unacked: the ack deadline turns the unacked targets into one leased job; an ack before it cancels; one outcome per target', async () => {
      for (const d of ['a', 'b', 'c']) {
        await online(d);
        await register(d);
      }
      const p = payload();
      const result = await publish(['a', 'b', 'c'], p, { fallback: 'unacked' });
      expect(result.kind === 'accepted' && result.fallback).toEqual([]);
      await store.ack(p, 'b', clock.now());
      clock.advance(ACK_MS);
      const claims = await Promise.all([store.claimDue(clock.now(), 100, LEASE_MS), store.claimDue(clock.now(), 100, LEASE_MS)]);
      const jobs = claims.flatMap((c) => c.jobs);
      expect(jobs).toEqual([
        { key: `p|${p.id}|2|u`, trigger: 'unacked', notification: expect.anything(), targets: [{ deviceId: 'a', registration: reg('a') }, { deviceId: 'c', registration: reg('c') }] },
      ]);
      // a's outcome is recorded by a claimant that then died; after the lease only c is left.
      await store.recordFallback(jobs[0]!.key, [{ deviceId: 'a', status: 'failed', provider: 'fcm', reason: 'gone', at: clock.now(), registration: reg('a') }], false);
      clock.advance(LEASE_MS);
      const again = await store.claimDue(clock.now(), 100, LEASE_MS);
      expect(again.jobs.map((j) => j.targets)).toEqual([[{ deviceId: 'c', registration: reg('c') }]]);
      await store.recordFallback(again.jobs[0]!.key, [{ deviceId: 'c', status: 'sent', provider: 'fcm', at: clock.now() }, { deviceId: 'a', status: 'sent', provider: 'fcm', at: clock.now() }], true);
      expect(await statusOf(p.id, 'a')).toMatchObject({ fallback: { status: 'failed', reason: 'gone' } }); // the first outcome stays
      expect(await statusOf(p.id, 'b')).not.toHaveProperty('fallback');
      clock.advance(LEASE_MS);
      expect(await store.claimDue(clock.now(), 100, LEASE_MS)).toMatchObject({ jobs: [] });
      // gone deleted a's registration (it was still the one used); c's stays.
      const devices = await presence.getDevices(['a', 'c'], clock.now());
      expect(devices.map((d) => d?.push)).toEqual([undefined, { provider: 'fcm' }]);
    });

    it('keeps a registration that replaced the one a provider reported gone', async () => {
      await online('d');
      await register('d');
      const p = payload();
      await presence.disconnect([{ deviceId: 'd', sessionId: 's-d', userId: 'u', instanceId: 'gw' }], clock.now(), 'client_close');
      const result = await publish(['d'], p, { fallback: 'offline' });
      const job = result.kind === 'accepted' ? result.fallback[0]! : undefined;
      const fresh = JSON.stringify({ provider: 'apns', token: 'ab'.repeat(32) });
      if (store instanceof RedisNotificationStore) await new RedisPushRegistrationStore(redisClient, prefixOf(store)).register('d', JSON.parse(fresh), clock.now());
      else (presence as MemoryPresenceStore).setPushRegistration('d', fresh, clock.now());
      await store.recordFallback(job!.key, [{ deviceId: 'd', status: 'failed', provider: 'fcm', reason: 'gone', at: clock.now(), registration: reg('d') }], true);
      expect((await presence.getDevices(['d'], clock.now()))[0]?.push).toEqual({ provider: 'apns' });
    });
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
      return { presence, store: new MemoryNotificationStore(presence), events: presence.events };
    },
    async (store) => (store as MemoryNotificationStore).footprint,
  );
});

describe('RedisNotificationStore (real Redis)', () => {
  const redis = new Redis(testRedisUrl());
  redisClient = redis;
  const prefix = uniquePrefix('notify');
  afterEach(() => deleteKeys(redis, prefix));
  afterAll(() => redis.quit());

  notificationStoreCases(
    () => ({
      presence: new RedisPresenceStore(redis, prefix, 30 * DAY),
      store: new RedisNotificationStore(redis, prefix, DAY),
      events: new RedisEventLog(redis, prefix, DAY),
    }),
    // Presence keys of the online device are the presence store's; notif:seq is one counter.
    () => keysWithoutTtl(redis, prefix, ['notif:seq', 'device:on', 'user:u:devices', 'presence:expiry:gw', 'instances']),
  );

  it('lands each notification event in the same atomic step as its status change (snapshots by MULTI on another connection)', async () => {
    const store = new RedisNotificationStore(redis, prefix, DAY);
    const reader = redis.duplicate();
    const now = Date.now();
    const p: NotificationPayload = { id: 'atomic-1', data: 1, createdAt: now };
    const devices = Array.from({ length: 150 }, (_, i) => `a${i}`);
    await store.publish({ payload: p, payloadJson: JSON.stringify(p), deviceIds: devices, effectiveExpiresAt: now + 60_000, keepOffline: true, maxInbox: 10, retentionMs: DAY, now, ackDeadlineAt: now, fallback: 'none', leaseMs: 1 });
    let writing = true;
    const writer = (async () => {
      for (const d of devices) {
        await store.ack(p, d, now);
        await store.claimDue(now, 1, 15_000); // an ack deadline of a delivered batch: records nothing
      }
    })().finally(() => (writing = false));
    let snapshots = 0;
    while (writing || snapshots === 0) {
      const replies = await reader.multi().hgetall(`${prefix}notif:atomic-1`).xrange(`${prefix}events`, '-', '+').exec();
      const hash = replies![0]![1] as Record<string, string>;
      const entries = replies![1]![1] as [string, string[]][];
      const delivered = Object.entries(hash).filter(([f, v]) => f.startsWith('t:') && v.startsWith('delivered:')).map(([f]) => f.slice(2));
      const recorded = entries.map(([, f]) => ({ type: f[1], data: JSON.parse(f[5]!) as { deviceId: string } }));
      // What the hash says is what the log says: never a status change without its event, or the reverse.
      expect(recorded.map((e) => e.type).filter((t) => t !== 'notification.delivered')).toEqual([]);
      expect(recorded.map((e) => e.data.deviceId).sort()).toEqual(delivered.sort());
      snapshots++;
    }
    await writer;
    await reader.quit();
    expect(snapshots).toBeGreaterThan(1);
  });

  it('writes inboxes and receipts with TTLs, so nothing outlives its notification', async () => {
    const store = new RedisNotificationStore(redis, prefix);
    const now = Date.now();
    const p: NotificationPayload = { id: 'ttl-1', data: 1, createdAt: now, collapseKey: 'c' };
    await store.publish({ payload: p, payloadJson: JSON.stringify(p), deviceIds: ['d'], effectiveExpiresAt: now + 60_000, keepOffline: true, maxInbox: 10, retentionMs: DAY, now, ackDeadlineAt: now, fallback: 'none', leaseMs: 1 });
    expect(await redis.zrange(`${prefix}inbox:d`, '0', '-1')).toEqual(['ttl-1']);
    expect(await redis.pttl(`${prefix}inbox:d`)).toBeGreaterThan(59_000);
    expect(await redis.pttl(`${prefix}inbox:d:collapse`)).toBeGreaterThan(59_000);
    expect(await redis.pttl(`${prefix}notif:ttl-1`)).toBeGreaterThan(DAY);
  });
});
