import Redis, { Cluster } from 'ioredis';
import { FakeClock } from '../../test/support/fake-clock';
import { redisCommandsDuring, testRedisUrl, uniquePrefix } from '../../test/support/redis';
import { startRedisCluster } from '../../test/support/redis-servers';
import { NotificationPayload } from '../channel/socket-events';
import { StoreUnavailableError } from '../common/store-unavailable.error';
import { EventEnvelope } from '../events/event.types';
import { RedisEventLog, toEnvelope } from '../events/redis-event-log';
import { MemoryPresenceStore } from '../presence/memory-presence.store';
import { SessionRef, SessionStart } from '../presence/presence.types';
import { RedisPresenceStore } from '../presence/redis-presence.store';
import { RedisPushRegistrationStore } from '../push/push-registration.store';
import { createClient, RedisClient } from '../redis/redis-connection';
import { KeyLayout, keySlot } from '../redis/partitions';
import { MemoryNotificationStore } from './memory-notification.store';
import { headerPartitionOf, mintNotificationId } from './notification-id';
import { DUE_BATCH, NotificationStore } from './notification.store';
import { DueClaim, OnlineTarget, PublishRequest, PublishResult } from './notification.types';
import { FIRST_WAVE, PART_CHUNK, RedisNotificationStore } from './redis-notification.store';

const DAY = 86_400_000;
const RETENTION = DAY;
const ACK_MS = 3_000;
const LEASE_MS = 15_000;

/** What the suite needs of presence: the presence store, or (partitioned) a stand-in writing the same device hash. */
interface Devices {
  connect(start: SessionStart): Promise<unknown>;
  disconnect(sessions: readonly SessionRef[], now: number, reason: 'client_close'): Promise<unknown>;
  getDevices(deviceIds: readonly string[], now: number): Promise<({ push?: { provider: string } } | null)[]>;
}

interface Harness {
  presence: Devices;
  store: NotificationStore;
  events: { read(after: string | undefined, count: number, now: number): Promise<EventEnvelope[]> };
  /** Stores a device's native push registration (JSON), as the registration store does. */
  register(deviceId: string, registration: string, now: number): Promise<void>;
  keys: KeyLayout;
}

/** A push job's due member, without the partition a Redis store names it by. */
const bare = (key: string) => key.replace(/^\d+\//, '');

/** `n` names `<base><i>` that share one partition (any names with one partition). */
function samePartition(keys: KeyLayout, n: number, base: string): string[] {
  const out: string[] = [];
  let want: number | undefined;
  for (let i = 0; out.length < n; i++) {
    const name = `${base}${i}`;
    want ??= keys.partitionOf(name);
    if (keys.partitionOf(name) === want) out.push(name);
  }
  return out;
}

/** `n` names `<base><i>` in partition p (or, `outside`, not in it). */
function namesIn(keys: KeyLayout, p: number, n: number, base: string, outside = false): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) if ((keys.partitionOf(`${base}${i}`) === p) !== outside || keys.partitions === 1) out.push(`${base}${i}`);
  return out;
}

/**
 * `unbounded` counts what the store would keep with no end in sight once every window has passed
 * on the test's clock: entries still held by the embedded store, keys without a TTL in Redis.
 */
function notificationStoreCases(make: () => Harness, unbounded: (store: NotificationStore) => Promise<number>) {
  let presence: Devices;
  let store: NotificationStore;
  let events: Harness['events'];
  let harness: Harness;
  let keys: KeyLayout;
  /** notification.* events seen so far (ids). */
  let seen: Set<string>;
  /**
   * notification.* events recorded since the last call, as [type, data], per device in the order
   * recorded (`recorded`: all in the order read, for devices of one partition): events of devices
   * in different partitions are in different streams, ordered by time only.
   */
  const newEvents = async (recorded = false): Promise<[string, Record<string, unknown>][]> => {
    const batch = (await events.read(undefined, 10_000, clock.now())).filter((e) => !seen.has(e.id));
    for (const e of batch) seen.add(e.id);
    const list = batch.filter((e) => e.type.startsWith('notification.')).map((e): [string, Record<string, unknown>] => [e.type, e.data]);
    return recorded ? list : inDeviceOrder(list);
  };
  const inDeviceOrder = (list: [string, Record<string, unknown>][]) =>
    list.map((e, i) => ({ e, i })).sort((a, b) => String(a.e[1].deviceId).localeCompare(String(b.e[1].deviceId)) || a.i - b.i).map(({ e }) => e);
  let clock: FakeClock;
  let n = 0;
  /** Partitions holding targets published to by this test: where claims look. */
  let touched: Set<number>;

  const online = (deviceId: string) =>
    presence.connect({ deviceId, sessionId: `s-${deviceId}`, userId: 'u', instanceId: 'gw', now: clock.now(), interval: 1_000, ttl: 60_000 });
  const payload = (extra: Partial<NotificationPayload> = {}): NotificationPayload => ({
    id: `n${++n}-${Math.random().toString(36).slice(2, 8)}`,
    data: { n },
    createdAt: clock.now(),
    ...extra,
  });
  const publish = (deviceIds: string[], p = payload(), extra: Partial<PublishRequest> = {}) => {
    // As the service mints them: under an Idempotency-Key the id names the key's partition.
    if (extra.idempotency && headerPartitionOf(keys, p.id) !== keys.partitionOf(extra.idempotency.key)) {
      p.id = mintNotificationId(keys, keys.partitionOf(extra.idempotency.key));
    }
    for (const d of deviceIds) touched.add(keys.partitionOf(d));
    return store.publish({
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
  };
  /** What is due in every partition this test published to (one claim with one partition). */
  const claimDue = async (now: number, limit: number, leaseMs: number): Promise<DueClaim> => {
    const parts = touched.size ? [...touched].sort((a, b) => a - b) : [0];
    const claims = await Promise.all(parts.map((p) => store.claimDue(now, limit, leaseMs, p)));
    if (claims.length === 1) return claims[0]!;
    return {
      claimed: claims.reduce((s, c) => s + c.claimed, 0),
      unacked: claims.reduce((s, c) => s + c.unacked, 0),
      expired: claims.reduce((s, c) => s + c.expired, 0),
      jobs: claims.flatMap((c) => c.jobs),
      more: claims.some((c) => c.more),
    };
  };
  const pendingIds = async (deviceId: string) => (await store.pending(deviceId, clock.now(), 100)).map((x) => x.payload.id);
  const statusOf = async (id: string, deviceId: string) => (await store.status(id, clock.now()))?.targets.find((t) => t.deviceId === deviceId);

  beforeEach(() => {
    harness = make();
    ({ presence, store, events, keys } = harness);
    clock = new FakeClock();
    seen = new Set();
    touched = new Set();
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
    await claimDue(clock.now(), 100, LEASE_MS); // deadlines leave the index when they fire
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
      expect(await newEvents()).toEqual(inDeviceOrder([ev('delivered', p.id, 'on', 'u'), ev('delivered', p.id, 'off', null)]));
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
      expect(await newEvents()).toEqual(inDeviceOrder([ev('delivered', p.id, 'on', 'u'), ev('delivered', q.id, 'on', 'u'), ev('delivered', p.id, 'off', null)]));
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
      expect(await newEvents()).toEqual(inDeviceOrder([ev('expired', p.id, 'gone', 'u', 'offline'), ev('expired', p.id, 'never', null, 'offline')]));
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
      expect(await newEvents()).toEqual(inDeviceOrder([ev('expired', a.id, 'on', 'u', 'inbox_full')]));
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
      expect(await claimDue(clock.now(), 100, LEASE_MS)).toEqual({ claimed: 0, unacked: 0, expired: 0, jobs: [], more: false });
      clock.advance(1);
      expect(await claimDue(clock.now(), 100, LEASE_MS)).toMatchObject({ claimed: 1, unacked: 1, jobs: [] });
      // Sent again from the inbox: a deadline of its own, but the target was reported already.
      await store.armAckDeadlines([{ id: p.id, deviceId: 'on' }], clock.now() + ACK_MS, clock.now());
      clock.advance(ACK_MS);
      expect(await claimDue(clock.now(), 100, LEASE_MS)).toMatchObject({ claimed: 1, unacked: 0 });
      clock.advance(5);
      expect(await store.ack(p, 'on', clock.now())).toBe(true); // a late ack
      expect(await newEvents()).toEqual(inDeviceOrder([ev('unacked', p.id, 'on', 'u'), ev('delivered', p.id, 'on', 'u')]));

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
      // Nothing waits any more: the deadlines of the two delivered ones left with their acks, the
      // three replaced or evicted ones are claimed and report nothing.
      expect(await claimDue(clock.now(), 100, LEASE_MS)).toMatchObject({ claimed: 3, unacked: 0 });
      expect(await newEvents()).toEqual([]);

      const ttl0 = payload();
      await publish(['on'], ttl0, { keepOffline: false, effectiveExpiresAt: clock.now() + ACK_MS });
      clock.advance(ACK_MS); // its ack window (its effective expiry) ended: it reads expired, and is unacked
      expect(await claimDue(clock.now(), 100, LEASE_MS)).toMatchObject({ unacked: 1, expired: 1 });
      expect(await newEvents()).toEqual(inDeviceOrder([ev('unacked', ttl0.id, 'on', 'u'), ev('expired', ttl0.id, 'on', 'u', 'ttl')]));
    });

    it('delivered: names the user of the session that acked when the ack carries it, the device\'s user otherwise', async () => {
      await online('on');
      const p = payload();
      const q = payload();
      await publish(['on'], p);
      await publish(['on'], q);
      await newEvents();
      expect(await store.ackMany([{ payload: p, deviceId: 'on', userId: 'u', fromInbox: false }, { payload: q, deviceId: 'on' }], clock.now())).toEqual([true, true]);
      expect(await newEvents()).toEqual([ev('delivered', p.id, 'on', 'u'), ev('delivered', q.id, 'on', 'u')]);
    });

    it('an ack of a live send leaves a redelivery deadline armed elsewhere, which then finds it delivered and reports nothing', async () => {
      await online('on');
      const p = payload();
      await publish(['on'], p);
      // Also read back from the inbox (another socket of the device, say), which armed its own deadline.
      await store.armAckDeadlines([{ id: p.id, deviceId: 'on' }], clock.now() + ACK_MS, clock.now());
      expect(await store.ackMany([{ payload: p, deviceId: 'on', userId: 'u', fromInbox: false }], clock.now())).toEqual([true]);
      await newEvents();
      clock.advance(ACK_MS);
      expect(await claimDue(clock.now(), 100, LEASE_MS)).toMatchObject({ claimed: 1, unacked: 0 });
      expect(await newEvents()).toEqual([]);
      expect(await claimDue(clock.now(), 100, LEASE_MS)).toMatchObject({ claimed: 0 });
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
      // The publish's deadline and the redelivery's left with the ack: nothing to claim.
      expect(await claimDue(clock.now(), 100, LEASE_MS)).toMatchObject({ claimed: 0, unacked: 0 });
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
      expect(await newEvents()).toEqual(inDeviceOrder([ev('expired', a.id, 'off', null, 'ttl')]));
      const claim = await claimDue(clock.now(), 100, LEASE_MS);
      expect(claim).toMatchObject({ unacked: 1, expired: 2 });
      expect((await newEvents()).filter(([t]) => t === 'notification.expired')).toEqual(
        inDeviceOrder([ev('expired', a.id, 'on', 'u', 'ttl'), ev('expired', b.id, 'off', null, 'ttl')]),
      );
      expect(await store.pending('on', clock.now(), 100)).toEqual([]);
      expect(await statusOf(a.id, 'on')).toEqual({ deviceId: 'on', status: 'expired', updatedAt: clock.now() });
      expect(await statusOf(a.id, 'done')).toMatchObject({ status: 'delivered' });
      expect(await claimDue(clock.now(), 100, LEASE_MS)).toMatchObject({ claimed: 0 });
    });

    it('bounds the work of one claim (an entry counts 1 plus its targets), oldest first, and hands each entry to one of racing claimants', async () => {
      // One partition: one index, one claim at a time.
      const devices = samePartition(keys, 12, 'd');
      for (const d of devices) await online(d);
      const ids = [];
      for (const d of devices) {
        const p = payload();
        ids.push(p.id);
        await publish([d], p, { effectiveExpiresAt: clock.now() + 60_000 });
        clock.advance(1);
      }
      await newEvents();
      clock.advance(ACK_MS);
      // Each ack deadline here is one target: 2 units, so a limit of 6 takes 3 entries.
      const claims = await Promise.all([0, 1, 2, 3, 4].map(() => claimDue(clock.now(), 6, LEASE_MS)));
      // (The store runs them one after another, in the order they were called.)
      expect(claims.map((c) => [c.claimed, c.more])).toEqual([[3, true], [3, true], [3, true], [3, false], [0, false]]);
      // One partition: its events in the order recorded.
      const unacked = (await newEvents(true)).filter(([t]) => t === 'notification.unacked').map(([, d]) => d.notificationId);
      expect(unacked).toEqual(ids);
    });
  });

  it('keeps one due entry per batch of DUE_BATCH targets, and a claim stops at its work limit with more to come', async () => {
    const devices = samePartition(keys, DUE_BATCH * 2 + 200, 'big-');
    await Promise.all(devices.map((d) => online(d)));
    const p = payload();
    await publish(devices, p, { effectiveExpiresAt: clock.now() + 60_000 });
    clock.advance(ACK_MS);
    const first = await claimDue(clock.now(), 1_000, LEASE_MS);
    expect(first).toMatchObject({ claimed: 2, unacked: DUE_BATCH * 2, more: true });
    expect(await claimDue(clock.now(), 1_000, LEASE_MS)).toMatchObject({ claimed: 1, unacked: 200, more: false });
    expect(await claimDue(clock.now(), 1_000, LEASE_MS)).toMatchObject({ claimed: 0, more: false });
  });

  describe('native push fallback', () => {
    const reg = (deviceId: string) => JSON.stringify({ provider: 'fcm', token: `token-of-${deviceId}-${'x'.repeat(32)}` });
    const register = (deviceId: string) => harness.register(deviceId, reg(deviceId), clock.now());

    it('offline: leases the offline targets to the publisher at once (ttl 0 and ttl > 0), with their registrations', async () => {
      // One partition, so one part: its batches are numbered 1 (sent), 2 (offline).
      const [on, gone, never] = samePartition(keys, 3, 'fo-') as [string, string, string];
      await online(on);
      await online(gone);
      await presence.disconnect([{ deviceId: gone, sessionId: `s-${gone}`, userId: 'u', instanceId: 'gw' }], clock.now(), 'client_close');
      await register(gone);
      const p = payload();
      const result = await publish([on, gone, never], p, { fallback: 'offline' });
      expect(result).toMatchObject({ kind: 'accepted', answer: { online: 1, queued: 2 } });
      const jobs = result.kind === 'accepted' ? result.fallback : [];
      expect(jobs).toEqual([
        { key: expect.stringMatching(new RegExp(`^(\\d+/)?p\\|${p.id}\\|2\\|o$`)), trigger: 'offline', notification: { payload: p, bytes: Buffer.byteLength(JSON.stringify(p)) }, targets: [{ deviceId: gone, registration: reg(gone) }, { deviceId: never }] },
      ]);
      const ttl0 = payload();
      const dropped = await publish([gone], ttl0, { fallback: 'unacked', keepOffline: false });
      expect(dropped.kind === 'accepted' && dropped.fallback.map((j) => j.targets)).toEqual([[{ deviceId: gone, registration: reg(gone) }]]);
      // Leased: nobody else gets them before the lease ends, or at all once recorded.
      expect((await claimDue(clock.now(), 100, LEASE_MS)).jobs).toEqual([]);
      const at = clock.now();
      await store.recordFallback(jobs[0]!.key, [{ deviceId: gone, status: 'sent', provider: 'fcm', at, registration: reg(gone) }, { deviceId: never, status: 'no_target', at }], true);
      expect(await statusOf(p.id, gone)).toEqual({ deviceId: gone, status: 'pending', updatedAt: at, fallback: { status: 'sent', provider: 'fcm', at } });
      expect(await statusOf(p.id, never)).toMatchObject({ fallback: { status: 'no_target', at } });
      expect(await statusOf(p.id, on)).not.toHaveProperty('fallback');
      clock.advance(LEASE_MS);
      expect((await claimDue(clock.now(), 100, LEASE_MS)).jobs.map((j) => bare(j.key))).toEqual([`p|${ttl0.id}|1|o`]); // its claimant never recorded it
    });

    it('unacked: the ack deadline turns the unacked targets into one leased job; an ack before it cancels; one outcome per target', async () => {
      const [a, b, c] = samePartition(keys, 3, 'fu-') as [string, string, string];
      for (const d of [a, b, c]) {
        await online(d);
        await register(d);
      }
      const p = payload();
      const result = await publish([a, b, c], p, { fallback: 'unacked' });
      expect(result.kind === 'accepted' && result.fallback).toEqual([]);
      await store.ack(p, b, clock.now());
      clock.advance(ACK_MS);
      const claims = await Promise.all([claimDue(clock.now(), 100, LEASE_MS), claimDue(clock.now(), 100, LEASE_MS)]);
      const jobs = claims.flatMap((c) => c.jobs);
      expect(jobs).toEqual([
        { key: expect.stringMatching(new RegExp(`^(\\d+/)?p\\|${p.id}\\|2\\|u$`)), trigger: 'unacked', notification: expect.anything(), targets: [{ deviceId: a, registration: reg(a) }, { deviceId: c, registration: reg(c) }] },
      ]);
      // a's outcome is recorded by a claimant that then died; after the lease only c is left.
      await store.recordFallback(jobs[0]!.key, [{ deviceId: a, status: 'failed', provider: 'fcm', reason: 'gone', at: clock.now(), registration: reg(a) }], false);
      clock.advance(LEASE_MS);
      const again = await claimDue(clock.now(), 100, LEASE_MS);
      expect(again.jobs.map((j) => j.targets)).toEqual([[{ deviceId: c, registration: reg(c) }]]);
      await store.recordFallback(again.jobs[0]!.key, [{ deviceId: c, status: 'sent', provider: 'fcm', at: clock.now() }, { deviceId: a, status: 'sent', provider: 'fcm', at: clock.now() }], true);
      expect(await statusOf(p.id, a)).toMatchObject({ fallback: { status: 'failed', reason: 'gone' } }); // the first outcome stays
      expect(await statusOf(p.id, b)).not.toHaveProperty('fallback');
      clock.advance(LEASE_MS);
      expect(await claimDue(clock.now(), 100, LEASE_MS)).toMatchObject({ jobs: [] });
      // gone deleted a's registration (it was still the one used); c's stays.
      const devices = await presence.getDevices([a, c], clock.now());
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
      await harness.register('d', fresh, clock.now());
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
      return {
        presence,
        store: new MemoryNotificationStore(presence),
        events: presence.events,
        register: async (deviceId, registration, now) => {
          presence.setPushRegistration(deviceId, registration, now);
        },
        keys: new KeyLayout('mem:', false),
      };
    },
    async (store) => (store as MemoryNotificationStore).footprint,
  );
});

/** Every partition's events, in (ms, partition, n) order, ids `<ms>-<p>-<n>`. */
class PartitionedEvents {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeyLayout,
  ) {}
  async read(): Promise<EventEnvelope[]> {
    const streams = await Promise.all(
      Array.from({ length: this.keys.partitions }, async (_, p) =>
        (await this.redis.xrange(`${this.keys.at(p)}events`, '-', '+')).map(([id, fields]) => {
          const [ms, n] = id.split('-').map(Number) as [number, number];
          return { order: [ms, p, n], envelope: { ...toEnvelope(id, fields), id: `${ms}-${p}-${n}` } };
        }),
      ),
    );
    return streams
      .flat()
      .sort((a, b) => a.order[0]! - b.order[0]! || a.order[1]! - b.order[1]! || a.order[2]! - b.order[2]!)
      .map((e) => e.envelope);
  }
}

/** Every key under a prefix, on each master of a Cluster. */
async function keysUnder(redis: RedisClient, prefix: string): Promise<string[]> {
  const nodes = redis instanceof Cluster ? redis.nodes('master') : [redis];
  const out: string[] = [];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      out.push(...keys);
      cursor = next;
    } while (cursor !== '0');
  }
  return out;
}

/** A key's name without REDIS_PREFIX and its partition tag: `notif:seq`, `device:on`. */
const plainName = (key: string, prefix: string) => key.slice(prefix.length).replace(/^\{[a-z0-9]+\}:/, '');

interface RedisMode {
  name: string;
  sharded: boolean;
  /** The Redis to run against (a Cluster is started in beforeAll). */
  connect(): Promise<{ redis: RedisClient; pause?: (nodeOfKey: string) => () => void; close(): Promise<void> }>;
}

const MODES: RedisMode[] = [
  {
    name: 'single Redis, one partition (the contract key names)',
    sharded: false,
    connect: async () => {
      const redis = new Redis(testRedisUrl());
      return { redis, close: async () => void (await redis.quit()) };
    },
  },
  {
    name: 'single Redis, 1024 partitions',
    sharded: true,
    connect: async () => {
      const redis = new Redis(testRedisUrl());
      return { redis, close: async () => void (await redis.quit()) };
    },
  },
  {
    name: 'Redis Cluster, 3 masters',
    sharded: true,
    connect: async () => {
      const cluster = await startRedisCluster();
      const redis = createClient({ mode: 'cluster', nodes: cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })) }, 1_000, true);
      await redis.connect();
      return {
        redis,
        /** SIGSTOPs the master holding this key; returns the resume. */
        pause: (key: string) => {
          const cl = redis as Cluster;
          const slot = cl.slots[keySlot(key)]!;
          const port = Number(slot[0]!.split(':')[1]);
          const node = cluster.nodes.find((n) => n.port === port)!;
          node.pause();
          return () => node.resume();
        },
        close: async () => {
          redis.disconnect();
          cluster.kill();
        },
      };
    },
  },
];

for (const mode of MODES) {
  describe(`RedisNotificationStore (${mode.name})`, () => {
    let redis: RedisClient;
    let conn: Awaited<ReturnType<RedisMode['connect']>>;
    const prefix = uniquePrefix('notify');
    const keys = new KeyLayout(prefix, mode.sharded);
    const harness = (): Harness => {
      const registrations = new RedisPushRegistrationStore(redis, keys);
      return {
        presence: new RedisPresenceStore(redis, keys, 30 * DAY),
        store: new RedisNotificationStore(redis, keys, DAY),
        // With partitions the app's reader waits for the floors (advanced by a job not running
        // here), so the sharded cases read every partition's stream directly.
        events: mode.sharded ? new PartitionedEvents(redis, keys) : new RedisEventLog(redis, keys, DAY),
        register: async (deviceId, registration, now) => void (await registrations.register(deviceId, JSON.parse(registration) as never, now)),
        keys,
      };
    };

    beforeAll(async () => {
      conn = await mode.connect();
      redis = conn.redis;
    }, 60_000);
    afterEach(async () => {
      const all = await keysUnder(redis, prefix);
      await Promise.all(all.map((k) => redis.del(k)));
    });
    afterAll(() => conn.close());

    notificationStoreCases(harness, async () => {
      // Presence keys of the online device are presence's; notif:seq is one counter per partition.
      const except = ['notif:seq', 'device:on', 'user:u:devices', 'user:u:ver', 'presence:expiry', 'instances'];
      let count = 0;
      for (const key of await keysUnder(redis, prefix)) if (!except.includes(plainName(key, prefix)) && (await redis.pttl(key)) === -1) count++;
      return count;
    });

    const request = (p: NotificationPayload, deviceIds: string[], now: number, extra: Partial<PublishRequest> = {}): PublishRequest => ({
      payload: p,
      payloadJson: JSON.stringify(p),
      deviceIds,
      effectiveExpiresAt: now + 60_000,
      keepOffline: true,
      maxInbox: 10,
      retentionMs: DAY,
      now,
      ackDeadlineAt: now + ACK_MS,
      fallback: 'none',
      leaseMs: LEASE_MS,
      ...extra,
    });

    it('lands each notification event in the same atomic step as its status change (snapshots by MULTI on another connection)', async () => {
      const { store } = harness();
      const now = Date.now();
      const p: NotificationPayload = { id: 'atomic-1', data: 1, createdAt: now };
      // One partition's part and event log: a MULTI reads one slot.
      const devices = samePartition(keys, 150, 'a');
      const part = keys.of(devices[0]!);
      await store.publish(request(p, devices, now, { ackDeadlineAt: now, leaseMs: 1 }));
      let writing = true;
      const writer = (async () => {
        for (const d of devices) {
          await store.ack(p, d, now);
          await store.claimDue(now, 1, 15_000, keys.partitionOf(d)); // an ack deadline of a delivered batch: records nothing
        }
      })().finally(() => (writing = false));
      let snapshots = 0;
      while (writing || snapshots === 0) {
        const replies = await redis.multi().hgetall(`${part}notif:atomic-1`).xrange(`${part}events`, '-', '+').exec();
        const hash = replies![0]![1] as Record<string, string>;
        const entries = replies![1]![1] as [string, string[]][];
        const delivered = Object.entries(hash).filter(([f, v]) => f.startsWith('t:') && v.startsWith('delivered:')).map(([f]) => f.slice(2));
        const recorded = entries.map(([id, f]) => toEnvelope(id, f));
        // What the hash says is what the log says: never a status change without its event, or the reverse.
        expect(recorded.map((e) => e.type).filter((t) => t !== 'notification.delivered')).toEqual([]);
        expect(recorded.map((e) => e.data.deviceId as string).sort()).toEqual(delivered.sort());
        snapshots++;
      }
      await writer;
      expect(snapshots).toBeGreaterThan(1);
    });

    it('an ack of a target still in its inbox whose notification was forgotten recreates nothing and records nothing', async () => {
      const { store } = harness();
      const now = Date.now();
      const p: NotificationPayload = { id: 'forgotten-1', data: 1, createdAt: now };
      const q: NotificationPayload = { id: 'kept-1', data: 2, createdAt: now };
      await store.publish(request(p, ['gone-a', 'gone-b'], now));
      await store.publish(request(q, ['gone-a'], now));
      // The part's hash is gone (its retention ran out while the inboxes outlived it); the entries remain.
      const part = keys.of('gone-a');
      await redis.del(`${part}notif:forgotten-1`);
      if (keys.of('gone-b') !== part) await redis.del(`${keys.of('gone-b')}notif:forgotten-1`);
      const eventsBefore = await redis.xlen(`${part}events`);
      const acks = [
        { payload: p, deviceId: 'gone-a' },
        { payload: q, deviceId: 'gone-a' },
        { payload: p, deviceId: 'gone-b' },
      ];
      expect(await store.ackMany(acks, now + 1)).toEqual([false, true, false]);
      expect(await redis.exists(`${part}notif:forgotten-1`)).toBe(0);
      expect(await redis.exists(`${keys.of('gone-b')}notif:forgotten-1`)).toBe(0);
      expect(await redis.zrange(`${part}inbox:gone-a`, '0', '-1')).toEqual([]);
      const added = (await redis.xrange(`${part}events`, '-', '+')).slice(eventsBefore).map(([id, f]) => toEnvelope(id, f));
      expect(added.map((e) => [e.type, e.data.notificationId])).toEqual([['notification.delivered', 'kept-1']]);
    });

    it('looks the users\' devices up in the write on one partition (one call), and writes nothing when they are more than the cap', async () => {
      const h = harness();
      expect(h.store.foldsUsers(0)).toBe(mode.sharded ? 0 : 200);
      if (mode.sharded) return;
      expect(h.store.foldsUsers(200)).toBe(0); // the devices named fill the call already
      const now = Date.now();
      const start = (deviceId: string, userId: string, at = now) =>
        h.presence.connect({ deviceId, sessionId: `s-${deviceId}`, userId, instanceId: 'gw', now: at, interval: 1_000, ttl: 60_000 });
      await start('fu-a1', 'fu-a');
      await start('fu-a2', 'fu-a');
      await h.presence.disconnect([{ deviceId: 'fu-a2', sessionId: 's-fu-a2', userId: 'fu-a', instanceId: 'gw' }], now, 'client_close'); // offline, still the user's
      await start('fu-b1', 'fu-b');
      await start('fu-old', 'fu-a', now - 10 * DAY); // last seen before forgetBefore: not a target
      await h.presence.disconnect([{ deviceId: 'fu-old', sessionId: 's-fu-old', userId: 'fu-a', instanceId: 'gw' }], now - 10 * DAY, 'client_close');
      const p: NotificationPayload = { id: mintNotificationId(keys, 0), data: 1, createdAt: now };
      let result: PublishResult | undefined;
      const seen = await redisCommandsDuring(redis, prefix, async () => {
        // fu-b1 named and a device of fu-b: written and sent once.
        result = await h.store.publish(request(p, ['fu-b1', 'fu-named'], now, { users: { ids: ['fu-a', 'fu-b'], forgetBefore: now - DAY, maxTargets: 200 } }));
      });
      expect(seen.filter(([c]) => c === 'evalsha' || c === 'eval')).toHaveLength(1);
      expect(result).toMatchObject({ kind: 'accepted', answer: { id: p.id, online: 2, queued: 2 } });
      expect(result!.kind === 'accepted' && result!.online.map((o) => o.deviceId).sort()).toEqual(['fu-a1', 'fu-b1']);
      const status = await h.store.status(p.id, now);
      expect(status?.targets.map((t) => [t.deviceId, t.status]).sort()).toEqual([
        ['fu-a1', 'pending'],
        ['fu-a2', 'pending'],
        ['fu-b1', 'pending'],
        ['fu-named', 'pending'],
      ]);
      expect(await redis.zcard(`${keys.of('fu-b1')}inbox:fu-b1`)).toBe(1);
      expect(await redis.exists(`${keys.of('fu-old')}inbox:fu-old`)).toBe(0);
      expect(await redis.zscore(`${keys.of('fu-a')}user:fu-a:devices`, 'fu-old')).toBeNull(); // dropped, as a lookup drops it

      // Over the cap (3 devices of fu-a and fu-b, cap 2 with one named): nothing written.
      const q: NotificationPayload = { id: mintNotificationId(keys, 0), data: 2, createdAt: now };
      expect(await h.store.publish(request(q, ['fu-named'], now, { users: { ids: ['fu-a', 'fu-b'], forgetBefore: now - DAY, maxTargets: 3 } }))).toEqual({ kind: 'unfolded' });
      expect(await redis.exists(`${keys.of('x')}notif:${q.id}`)).toBe(0);
      expect(await redis.zcard(`${keys.of('fu-named')}inbox:fu-named`)).toBe(1);
      // At the cap: written.
      expect(await h.store.publish(request(q, ['fu-named'], now, { users: { ids: ['fu-a', 'fu-b'], forgetBefore: now - DAY, maxTargets: 4 } }))).toMatchObject({
        kind: 'accepted',
        answer: { online: 2, queued: 2 },
      });
      // One user, no device named: one device over the cap is unfolded (never folded without it),
      // exactly at the cap every device is a target.
      const one: NotificationPayload = { id: mintNotificationId(keys, 0), data: 3, createdAt: now };
      expect(await h.store.publish(request(one, [], now, { users: { ids: ['fu-a'], forgetBefore: now - DAY, maxTargets: 1 } }))).toEqual({ kind: 'unfolded' });
      expect(await h.store.publish(request(one, [], now, { users: { ids: ['fu-a'], forgetBefore: now - DAY, maxTargets: 2 } }))).toMatchObject({
        kind: 'accepted',
        answer: { online: 1, queued: 1 },
      });
    });

    it('writes inboxes and receipts with TTLs, so nothing outlives its notification', async () => {
      const { store } = harness();
      const now = Date.now();
      const p: NotificationPayload = { id: 'ttl-1', data: 1, createdAt: now, collapseKey: 'c' };
      await store.publish(request(p, ['d'], now, { ackDeadlineAt: now, leaseMs: 1 }));
      const at = keys.of('d');
      expect(await redis.zrange(`${at}inbox:d`, '0', '-1')).toEqual(['ttl-1']);
      expect(await redis.pttl(`${at}inbox:d`)).toBeGreaterThan(59_000);
      expect(await redis.pttl(`${at}inbox:d:collapse`)).toBeGreaterThan(59_000);
      expect(await redis.pttl(`${at}notif:ttl-1`)).toBeGreaterThan(DAY);
      // The due-time index lasts a day past its latest entry (the ttl expiry here), and is only ever lengthened.
      const due = `${at}notif:due`;
      const first = await redis.pttl(due);
      expect(first).toBeGreaterThan(DAY + 59_000);
      expect(first).toBeLessThanOrEqual(DAY + 60_000);
      await store.publish(request({ id: 'ttl-2', data: 2, createdAt: now }, ['d'], now, { effectiveExpiresAt: now + 1_000 }));
      expect(await redis.pttl(due)).toBeGreaterThan(DAY + 58_000);
      expect(await redis.pttl(due)).toBeLessThanOrEqual(DAY + 60_000);
      // A later deadline lengthens it.
      await store.publish(request({ id: 'ttl-3', data: 3, createdAt: now }, ['d'], now, { effectiveExpiresAt: now + 120_000 }));
      expect(await redis.pttl(due)).toBeGreaterThan(DAY + 119_000);
    });

    it("keeps an inbox as long as its longest-lived entry: a later, longer ttl extends it, a shorter one never cuts it", async () => {
      const { store } = harness();
      const now = Date.now();
      const at = keys.of('grow');
      const send = (id: string, ttlMs: number) =>
        store.publish(request({ id, data: 1, createdAt: now }, ['grow'], now, { effectiveExpiresAt: now + ttlMs }));
      await send('grow-1', 60_000);
      expect(await redis.pttl(`${at}inbox:grow`)).toBeLessThanOrEqual(60_000);
      await send('grow-2', 600_000);
      expect(await redis.pttl(`${at}inbox:grow`)).toBeGreaterThan(590_000);
      await send('grow-3', 30_000);
      expect(await redis.pttl(`${at}inbox:grow`)).toBeGreaterThan(590_000);
      expect(await redis.zrange(`${at}inbox:grow`, '0', '-1')).toEqual(['grow-1', 'grow-2', 'grow-3']);
    });

    it('publishes to 3000 devices over many partitions: one inbox entry each, one status with every target, the answer summed over the parts', async () => {
      const h = harness();
      const now = Date.now();
      const devices = Array.from({ length: 3000 }, (_, i) => `fan-${i}`);
      const online = devices.filter((_, i) => i % 3 === 0);
      await Promise.all(online.map((d) => h.presence.connect({ deviceId: d, sessionId: `s-${d}`, userId: 'u', instanceId: 'gw', now, interval: 1_000, ttl: 60_000 })));
      const p: NotificationPayload = { id: mintNotificationId(keys, 7 % keys.partitions), data: 1, createdAt: now };
      const result = await h.store.publish(request(p, devices, now));
      expect(result).toMatchObject({ kind: 'accepted', answer: { id: p.id, online: 1000, queued: 2000 } });
      expect(result.kind === 'accepted' && result.online.length).toBe(1000);
      if (mode.sharded) expect(new Set(devices.map((d) => keys.partitionOf(d))).size).toBeGreaterThan(900);
      const status = await h.store.status(p.id, now);
      expect(status?.targets).toHaveLength(3000);
      expect(new Set(status?.targets.map((t) => t.deviceId))).toEqual(new Set(devices));
      expect(status?.targets.every((t) => t.status === 'pending')).toBe(true);
      const inboxes = await Promise.all(devices.map((d) => h.store.pending(d, now, 10)));
      expect(inboxes.every((inbox) => inbox.length === 1 && inbox[0]!.payload.id === p.id)).toBe(true);
    });

    it('hands a publish\'s online targets to onDurable as they are written, the first FIRST_WAVE targets first, then each call\'s as it is answered, each once, before it settles, and none in the result', async () => {
      const h = harness();
      const now = Date.now();
      const devices = Array.from({ length: 2 * PART_CHUNK + 500 }, (_, i) => `stream-${i}`);
      const online = devices.filter((_, i) => i % 2 === 0);
      await Promise.all(online.map((d) => h.presence.connect({ deviceId: d, sessionId: `s-${d}`, userId: 'u', instanceId: 'gw', now, interval: 1_000, ttl: 60_000 })));
      const reported: OnlineTarget[][] = [];
      let settled = false;
      const lateReports: number[] = [];
      const p: NotificationPayload = { id: mintNotificationId(keys, 0), data: 1, createdAt: now };
      const onDurable = (targets: OnlineTarget[]) => {
        if (settled) lateReports.push(targets.length);
        reported.push(targets);
      };
      const result = await h.store.publish(request(p, devices, now, { onDurable }));
      settled = true;
      expect(result).toMatchObject({ kind: 'accepted', answer: { id: p.id, online: online.length, queued: devices.length - online.length }, online: [] });
      expect(lateReports).toEqual([]);
      // The calls holding the first FIRST_WAVE targets, then each later call's online targets.
      expect(reported.length).toBeGreaterThan(1);
      expect(reported.every((r) => r.length > 0)).toBe(true);
      expect(reported[0]!.length).toBeLessThanOrEqual(FIRST_WAVE);
      // On one partition the calls after the first double in size up to PART_CHUNK (200, 400,
      // 800, 1000, then the 100 left), every other device online.
      if (keys.partitions === 1) expect(reported.map((r) => r.length)).toEqual([100, 200, 400, 500, 50]);
      expect(reported.flat().map((t) => t.deviceId).sort()).toEqual([...online].sort());
      expect(reported.flat().every((t) => t.instanceId === 'gw')).toBe(true);
      // With an Idempotency-Key the targets come back in the result, as before.
      const keyed = await h.store.publish(request({ ...p, id: mintNotificationId(keys, keys.partitionOf('k:stream')) }, online.slice(0, 3), now, { onDurable, idempotency: { key: 'k:stream', fingerprint: 'f', windowMs: 300_000 } }));
      expect(keyed.kind === 'accepted' && keyed.online.map((t) => t.deviceId).sort()).toEqual(online.slice(0, 3).sort());
    });

    it('completes a publish that failed part-way when retried with its Idempotency-Key: one notification, one inbox entry per device, the same answer', async () => {
      const h = harness();
      const store = h.store as RedisNotificationStore;
      const now = Date.now();
      const devices = Array.from({ length: 300 }, (_, i) => `retry-${i}`);
      await Promise.all(devices.slice(0, 100).map((d) => h.presence.connect({ deviceId: d, sessionId: `s-${d}`, userId: 'u', instanceId: 'gw', now, interval: 1_000, ttl: 60_000 })));
      const idempotency = { key: 'k:partial', fingerprint: 'f', windowMs: 300_000 };
      const attempt = (at: number) => {
        const p: NotificationPayload = { id: mintNotificationId(keys, keys.partitionOf(idempotency.key)), data: 1, createdAt: at };
        return store.publish(request(p, devices, at, { idempotency }));
      };
      // The first attempt: the part calls of every other partition fail (as a stalled master's would).
      const parts = [...keys.byPartition(devices, (d) => d).keys()];
      const failing = new Set(parts.filter((_, i) => i % 2 === 1 || parts.length === 1));
      const internals = store as unknown as { writePart: (r: PublishRequest, call: { p: number }, parts: number[]) => Promise<unknown> };
      const writePart = internals.writePart.bind(store);
      internals.writePart = (r, call, all) => (failing.has(call.p) ? Promise.reject(new StoreUnavailableError('Redis did not answer: simulated', 'unknown')) : writePart(r, call, all));
      const first = await attempt(now).catch((err: unknown) => err);
      expect(first).toBeInstanceOf(StoreUnavailableError);
      expect((first as StoreUnavailableError).outcome).toBe('unknown');
      internals.writePart = writePart;
      // The retry (later, a new id minted by the service) completes the first attempt's notification.
      const retry = await attempt(now + 500);
      expect(retry).toMatchObject({ kind: 'accepted', answer: { online: 100, queued: 200 } });
      const id = retry.kind === 'accepted' ? retry.answer.id : '';
      // Partitioned, the first attempt recorded its id and createdAt, which the retry completes; with
      // one partition a keyed publish is one script that never ran, so the retry is simply the publish.
      const createdAt = mode.sharded ? now : now + 500;
      if (mode.sharded) expect(retry.kind === 'accepted' && retry.notification?.payload).toMatchObject({ id, createdAt });
      // Online targets written by the first attempt are sent again (their first send may never have happened).
      expect(retry.kind === 'accepted' && retry.online.length).toBe(100);
      const again = await attempt(now + 1_000);
      expect(again).toMatchObject({ kind: 'replay', answer: retry.kind === 'accepted' ? retry.answer : {} });
      const status = await store.status(id, now + 1_000);
      expect(status).toMatchObject({ id, createdAt });
      expect(status?.targets.map((t) => t.deviceId).sort()).toEqual([...devices].sort());
      const inboxes = await Promise.all(devices.map((d) => store.pending(d, now + 1_000, 10)));
      expect(inboxes.every((inbox) => inbox.length === 1 && inbox[0]!.payload.id === id)).toBe(true);
    });

    if (!mode.sharded) {
      it('writes each target once when a call finds some written by an earlier one (a raced or retried call), across status groups, and a device listed twice once', async () => {
        const h = harness();
        const store = h.store as RedisNotificationStore;
        const now = Date.now();
        const devices = Array.from({ length: 1_200 }, (_, i) => `grp-${i}`);
        const online = devices.filter((_, i) => i % 3 === 0);
        for (let i = 0; i < online.length; i += 200) {
          await Promise.all(online.slice(i, i + 200).map((d) => h.presence.connect({ deviceId: d, sessionId: `s-${d}`, userId: 'u', instanceId: 'gw', now, interval: 1_000, ttl: 60_000 })));
        }
        const p: NotificationPayload = { id: mintNotificationId(keys, 0), data: 1, createdAt: now };
        const r = request(p, devices, now);
        const internals = store as unknown as { writePart: (r: PublishRequest, call: { p: number; deviceIds: string[]; header: boolean }, parts: number[]) => Promise<unknown[]> };
        // The earlier call wrote every other device of the first 1000 (spread over the groups of the later call).
        const earlier = devices.slice(0, 1_000).filter((_, i) => i % 2 === 0);
        const first = await internals.writePart(r, { p: 0, deviceIds: earlier, header: true }, [0]);
        const firstOnline = earlier.filter((d) => online.includes(d));
        expect(first.slice(0, 3)).toEqual(['ok', firstOnline.length, earlier.length - firstOnline.length]);
        // The later call lists all of them, one device twice.
        const second = await internals.writePart(r, { p: 0, deviceIds: [...devices, devices[1_199]!], header: true }, [0]);
        // The totals count each target once; every device online now is to be sent to (again for the earlier ones), once.
        expect(second.slice(0, 3)).toEqual(['ok', online.length, devices.length - online.length]);
        // Online targets come back grouped by instance: {instanceId, 'deviceId,deviceId,...'}.
        const [instance, sendTo, ...more] = second[3] as string[];
        expect([instance, more]).toEqual(['gw', []]);
        expect(sendTo!.split(',').sort()).toEqual([...online].sort());
        const status = await store.status(p.id, now);
        expect(status?.targets).toHaveLength(devices.length);
        expect(status?.targets.every((t) => t.status === 'pending')).toBe(true);
        const inboxes = await Promise.all(devices.map((d) => redis.zrange(`${keys.of(d)}inbox:${d}`, '0', '-1')));
        expect(inboxes.every((ids) => ids.length === 1 && ids[0] === p.id)).toBe(true);
      });

      it('publishes in one script call per PART_CHUNK targets, sent together, with or without an Idempotency-Key (and a status in one read)', async () => {
        const h = harness();
        const now = Date.now();
        await h.store.publish(request({ id: mintNotificationId(keys, 0), data: 0, createdAt: now }, ['warm-up'], now)); // connected, script cached
        const sent = jest.spyOn(redis, 'sendCommand');
        try {
          const p: NotificationPayload = { id: mintNotificationId(keys, 0), data: 1, createdAt: now };
          await h.store.publish(request(p, Array.from({ length: PART_CHUNK }, (_, i) => `one-${i}`), now));
          await h.store.status(p.id, now);
          const keyed = { key: 'k:one-call', fingerprint: 'f', windowMs: 300_000 };
          await h.store.publish(request({ id: mintNotificationId(keys, 0), data: 2, createdAt: now }, ['one-0', 'one-1'], now, { idempotency: keyed }));
          await h.store.publish(request({ id: mintNotificationId(keys, 0), data: 2, createdAt: now }, ['one-0', 'one-1'], now, { idempotency: keyed }));
          expect(sent.mock.calls.map(([command]) => command.name)).toEqual(['evalsha', 'hgetall', 'evalsha', 'evalsha']);
          sent.mockClear();
          // Past PART_CHUNK targets: a call per chunk, the first with the header, all sent at once.
          const big: NotificationPayload = { id: mintNotificationId(keys, 0), data: 3, createdAt: now };
          const publishing = h.store.publish(request(big, Array.from({ length: 2 * PART_CHUNK + 500 }, (_, i) => `one-${i}`), now));
          expect(sent.mock.calls.map(([command]) => command.name)).toEqual(['evalsha', 'evalsha', 'evalsha']);
          await publishing;
          expect((await h.store.status(big.id, now))?.targets).toHaveLength(2 * PART_CHUNK + 500);
        } finally {
          sent.mockRestore();
        }
      });
    }

    it('replays a keyed publish from one call when its targets are all in the key\'s partition, and part by part when they were not', async () => {
      const h = harness();
      const now = Date.now();
      const idempotency = { key: 'k:inh', fingerprint: 'f', windowMs: 300_000 };
      const hp = keys.partitionOf(idempotency.key);
      const [a, b] = namesIn(keys, hp, 2, 'inh-') as [string, string];
      for (const d of [a, b]) await h.presence.connect({ deviceId: d, sessionId: `s-${d}`, userId: 'u', instanceId: 'gw', now, interval: 1_000, ttl: 60_000 });
      const publish = (deviceIds: string[], key = idempotency) =>
        h.store.publish(request({ id: mintNotificationId(keys, keys.partitionOf(key.key)), data: 1, createdAt: now }, deviceIds, now, { idempotency: key }));
      const first = await publish([a, b]);
      expect(first).toMatchObject({ kind: 'accepted', answer: { online: 2, queued: 0 } });
      const replay = await publish([a, b]);
      expect(replay).toMatchObject({ kind: 'replay', answer: first.kind === 'accepted' ? first.answer : {} });
      expect(replay.kind === 'replay' && replay.pending?.online.map((t) => t.deviceId).sort()).toEqual([a, b].sort());
      // Spread over two partitions, retried with only the targets in the key's partition: both parts replay.
      const spread = { ...idempotency, key: 'k:spread' };
      const sp = keys.partitionOf(spread.key);
      const [c] = namesIn(keys, sp, 1, 'sp-') as [string];
      const [other] = namesIn(keys, sp, 1, 'spo-', true) as [string];
      for (const d of [c, other]) await h.presence.connect({ deviceId: d, sessionId: `s-${d}`, userId: 'u', instanceId: 'gw', now, interval: 1_000, ttl: 60_000 });
      const wide = await publish([c, other], spread);
      expect(wide).toMatchObject({ kind: 'accepted', answer: { online: 2 } });
      const again = await publish([c], spread);
      expect(again.kind === 'replay' && again.pending?.online.map((t) => t.deviceId).sort()).toEqual([c, other].sort());
    });

    it('drops a part\'s ack-deadline and expiry entries once every target it wrote pending is delivered, and only then', async () => {
      const h = harness();
      const now = Date.now();
      const [a, b, c, off] = samePartition(keys, 4, 'settle');
      const at = keys.of(a!);
      const partition = keys.partitionOf(a!);
      for (const d of [a!, b!, c!]) await h.presence.connect({ deviceId: d, sessionId: `s-${d}`, userId: 'u', instanceId: 'gw', now, interval: 1_000, ttl: 60_000 });
      const entries = async (id: string) => (await redis.zrange(`${at}notif:due`, '0', '-1')).filter((m) => m.includes(`|${id}|`)).sort();
      const mint = () => mintNotificationId(keys, partition);

      // Two online targets and one offline not kept (ttl 0): the offline one never holds entries.
      const p: NotificationPayload = { id: mint(), data: 1, createdAt: now };
      await h.store.publish(request(p, [a!, b!, off!], now, { keepOffline: false }));
      expect(await entries(p.id)).toEqual([`a|${p.id}|1`, `x|${p.id}|1`]);
      await h.store.ackMany([{ payload: p, deviceId: a! }, { payload: p, deviceId: a! }], now);
      expect(await entries(p.id)).toEqual([`a|${p.id}|1`, `x|${p.id}|1`]); // b still waits
      await h.store.ackMany([{ payload: p, deviceId: b! }], now);
      expect(await entries(p.id)).toEqual([]);

      // One target replaced by a newer notification of its collapse key, the other delivered: the
      // replaced one is not delivered, so the old part keeps its entries (its claim finds nothing to report).
      const old: NotificationPayload = { id: mint(), data: 1, createdAt: now, collapseKey: 'k' };
      await h.store.publish(request(old, [a!, c!], now));
      const newer: NotificationPayload = { id: mint(), data: 2, createdAt: now, collapseKey: 'k' };
      await h.store.publish(request(newer, [c!], now));
      await h.store.ackMany([{ payload: old, deviceId: a! }], now);
      expect(await entries(old.id)).toEqual([`a|${old.id}|1`, `x|${old.id}|1`]);
      // An ack of the replaced one is still proof of receipt: now all of them are delivered.
      await h.store.ackMany([{ payload: old, deviceId: c! }], now);
      expect(await entries(old.id)).toEqual([]);

      // A queued target (offline, kept) counts: its expiry entry stays until it is delivered.
      const q: NotificationPayload = { id: mint(), data: 1, createdAt: now };
      await h.store.publish(request(q, [a!, off!], now));
      await h.store.ackMany([{ payload: q, deviceId: a! }], now);
      expect(await entries(q.id)).toEqual([`a|${q.id}|1`, `x|${q.id}|1`, `x|${q.id}|2`]);
      await h.store.ackMany([{ payload: q, deviceId: off! }], now);
      expect(await entries(q.id)).toEqual([]);
      // What is left to claim is the newer notification's, never acked.
      expect((await redis.zrange(`${at}notif:due`, '0', '-1')).sort()).toEqual([`a|${newer.id}|1`, `x|${newer.id}|1`]);
      expect(await h.store.claimDue(now + 120_000, 100, LEASE_MS, partition)).toMatchObject({ claimed: 2, unacked: 1, expired: 1 });
    });

    it('claims deadlines per partition: each partition index holds its own devices\' deadlines', async () => {
      const h = harness();
      const now = Date.now();
      const [d1, d2] = mode.sharded ? ['x', samePartition(keys, 1, 'y').find((d) => keys.partitionOf(d) !== keys.partitionOf('x')) ?? 'z'] : ['x', 'y'];
      for (const d of [d1, d2]) await h.presence.connect({ deviceId: d, sessionId: `s-${d}`, userId: 'u', instanceId: 'gw', now, interval: 1_000, ttl: 60_000 });
      const p: NotificationPayload = { id: mintNotificationId(keys, keys.partitionOf(d1)), data: 1, createdAt: now };
      await h.store.publish(request(p, [d1, d2], now));
      const later = now + ACK_MS;
      if (mode.sharded) {
        expect(await h.store.claimDue(later, 100, LEASE_MS, keys.partitionOf(d1))).toMatchObject({ claimed: 1, unacked: 1 });
        expect(await h.store.claimDue(later, 100, LEASE_MS, keys.partitionOf(d2))).toMatchObject({ claimed: 1, unacked: 1 });
      } else {
        expect(await h.store.claimDue(later, 100, LEASE_MS, 0)).toMatchObject({ claimed: 1, unacked: 2 });
      }
    });

    if (mode.name.includes('Cluster')) {
      it('fails a publish touching a stalled master with StoreUnavailable (503), and the retry with its Idempotency-Key completes it', async () => {
        const h = harness();
        const store = h.store as RedisNotificationStore;
        const now = Date.now();
        const devices = Array.from({ length: 600 }, (_, i) => `stall-${i}`);
        const idempotency = { key: 'k:stalled', fingerprint: 'f', windowMs: 300_000 };
        const hp = keys.partitionOf(idempotency.key);
        const attempt = (at: number) =>
          store.publish(request({ id: mintNotificationId(keys, hp), data: 1, createdAt: at }, devices, at, { idempotency }));
        // Stall a master other than the header's, so the first step answers and a part does not.
        const other = devices.find((d) => redisNodeOf(redis, `${keys.of(d)}x`) !== redisNodeOf(redis, `${keys.at(hp)}x`))!;
        const resume = conn.pause!(`${keys.of(other)}x`);
        let first: unknown;
        try {
          first = await attempt(now).catch((err: unknown) => err);
        } finally {
          resume();
        }
        expect(first).toBeInstanceOf(StoreUnavailableError);
        // Once the master answers again, the retry completes the same notification.
        let retry: Awaited<ReturnType<typeof attempt>> | undefined;
        for (let i = 0; i < 50 && !retry; i++) {
          retry = await attempt(now + 100).catch(async () => {
            await new Promise((r) => setTimeout(r, 200));
            return undefined;
          });
        }
        expect(retry).toMatchObject({ kind: 'accepted', answer: { online: 0, queued: 600 } });
        const id = retry?.kind === 'accepted' ? retry.answer.id : '';
        const status = await store.status(id, now + 200);
        expect(status?.targets).toHaveLength(600);
        const inboxes = await Promise.all(devices.map((d) => store.pending(d, now + 200, 10)));
        expect(inboxes.every((inbox) => inbox.length === 1 && inbox[0]!.payload.id === id)).toBe(true);
      }, 60_000);
    }
  });
}

/** "host:port" of the master serving a key. */
function redisNodeOf(redis: RedisClient, key: string): string {
  return (redis as Cluster).slots[keySlot(key)]![0]!;
}
