import Redis, { Cluster } from 'ioredis';
import { IntervalRegistry } from '../common/interval-registry';
import { startRedisCluster } from '../../test/support/redis-servers';
import { DeviceChannel } from '../channel/device-channel';
import { SystemClock } from '../common/clock';
import { StoreUnavailableError } from '../common/store-unavailable.error';
import { loadConfig } from '../config/app-config';
import { toEnvelope } from '../events/redis-event-log';
import { SessionSweeper } from '../gateway/session-sweeper.service';
import { TokenExpiry } from '../gateway/token-expiry.service';
import { LoadMonitor } from '../load/load-monitor';
import { MetricsService } from '../metrics/metrics.service';
import { RedisPartitionLeases } from '../redis/partition-leases';
import { DuePartitions } from '../redis/due-partitions';
import { KeyLayout } from '../redis/partitions';
import { FakeClock } from '../../test/support/fake-clock';
import { deleteKeys, redisCommandsDuring, testRedisUrl, uniquePrefix } from '../../test/support/redis';
import { EventLog } from '../events/event-log';
import { EventEnvelope } from '../events/event.types';
import { MemoryEventLog } from '../events/memory-event-log';
import { RedisEventLog } from '../events/redis-event-log';
import { DEVICE_SAMPLE_PERIOD_MS, NETWORK_RETENTION_MS } from './network-intervals';
import { MemoryPresenceStore } from './memory-presence.store';
import { LiveInstances, PresenceStore } from './presence.store';
import { HeartbeatUpdate, indexAfter, SessionRef, SessionStart } from './presence.types';
import { RedisPresenceOptions, RedisPresenceStore, USER_SYNC_REPAIR_AFTER_MS } from './redis-presence.store';

const DAY = 86_400_000;
const RETENTION = 30 * DAY;
const TTL = 1_000;
const EVENT_RETENTION = 3_600_000;

/**
 * `unbounded` counts what the store would keep with no end in sight, once every retention has
 * passed on the test's clock: for the embedded store the entries still held, for Redis (whose TTLs
 * run on its own clock) the keys without a TTL, bounded indexes aside.
 */
interface Harness {
  make: (options?: { eventGraceMs?: number }) => PresenceStore;
  unbounded: (store: PresenceStore) => Promise<number>;
  /** The event log `store` writes (EVENT_RETENTION). */
  eventLog: (store: PresenceStore) => Pick<EventLog, 'read'>;
  /**
   * Whether the log is one stream in commit order (one partition). With several partitions only
   * the order per device and per user is the commit order: events are compared by that.
   */
  ordered: boolean;
}

type Row = [string, Record<string, unknown>];

/** Events compared as the log promises: in order with one partition; per device and per user with several. */
function expectEventsIn(ordered: boolean, actual: Row[], expected: unknown[]): void {
  if (ordered) return expect(actual).toEqual(expected);
  const rows = expected as Row[];
  // Key order aside, as toEqual compares (undefined fields dropped).
  const stable = (v: unknown): string =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? `{${Object.keys(v)
          .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
          .sort()
          .map((k) => `${k}:${stable((v as Record<string, unknown>)[k])}`)
          .join(',')}}`
      : Array.isArray(v)
        ? `[${v.map(stable).join(',')}]`
        : JSON.stringify(v);
  const canon = (list: Row[]) => list.map((r) => stable(r)).sort();
  expect(canon(actual)).toEqual(canon(rows));
  const streams = (list: Row[]) => {
    const by = new Map<string, string[]>();
    for (const [type, data] of list) {
      const key = type.startsWith('user.') ? `u:${String(data.userId)}` : `d:${String(data.deviceId)}`;
      by.set(key, [...(by.get(key) ?? []), stable([type, data])]);
    }
    return [...by].sort(([a], [b]) => a.localeCompare(b));
  };
  expect(streams(actual)).toEqual(streams(rows));
}

/** The same behaviour, case by case, for every implementation and key layout. */
function presenceStoreCases({ make: makeStore, unbounded, eventLog, ordered }: Harness) {
  let store: PresenceStore;
  let clock: FakeClock;
  /** Events recorded after the cursor `after`, as [type, data] (everything retained when absent). */
  let seen: string | undefined;
  const allEvents = async (): Promise<EventEnvelope[]> => eventLog(store).read(undefined, 1_000, clock.now());
  const expectEvents = (actual: Row[], expected: unknown[]) => expectEventsIn(ordered, actual, expected);
  /** Devices the test used: the partitions the sweeps and ticks below look at. */
  const known = new Set<string>();
  const partitions = () => [...new Set([...known].map((id) => store.partitionOf(id)))].sort((a, b) => a - b);
  /** A sweep of every partition the test used; `live` defaults to the instances whose report has not run out. */
  const claim = async (now: number, limit: number, live?: LiveInstances) => {
    const alive = live ?? (await store.liveInstances(now));
    const out: SessionRef[] = [];
    for (const p of partitions()) out.push(...(await store.claimExpired(p, now, limit, alive)));
    return out;
  };
  const claimIn = async (deviceId: string, now: number, limit: number, live?: LiveInstances) =>
    store.claimExpired(store.partitionOf(deviceId), now, limit, live ?? (await store.liveInstances(now)));
  const releaseAll = async (now: number, limit: number) => {
    let n = 0;
    for (const p of partitions()) n += await store.releaseHeldOfflines(p, now, limit);
    return n;
  };
  const newEvents = async (): Promise<Row[]> => {
    const events = await eventLog(store).read(seen, 1_000, clock.now());
    if (events.length) seen = events[events.length - 1]!.id;
    return events.map((e) => [e.type, e.data]);
  };
  const start = (deviceId: string, sessionId: string, extra: Partial<SessionStart> = {}): SessionStart => (
    known.add(deviceId),
    {
    deviceId,
    sessionId,
    userId: 'u1',
    instanceId: 'gw-1',
    platform: 'ios',
    now: clock.now(),
    interval: 400,
    ttl: TTL,
    ...extra,
  });
  const ref = (deviceId: string, sessionId: string, userId = 'u1') => ({ deviceId, sessionId, userId, instanceId: 'gw-1' });
  const online = async (id: string) => (await store.getDevices([id], clock.now()))[0]?.online ?? false;

  beforeEach(() => {
    store = makeStore();
    clock = new FakeClock();
    seen = undefined;
    known.clear();
  });

  it('records a session with everything the REST API shows', async () => {
    expect(await store.connect(start('d1', 's1'))).toBeNull();
    const [view] = await store.getDevices(['d1'], clock.now());
    expect(view).toMatchObject({
      deviceId: 'd1',
      userId: 'u1',
      online: true,
      platform: 'ios',
      instanceId: 'gw-1',
      sessionId: 's1',
      connectedAt: clock.now(),
      lastHeartbeatAt: clock.now(),
      expiresAt: clock.now() + TTL,
      interval: 400,
    });
    expect(await store.getDevices(['never-seen'], clock.now())).toEqual([null]);
  });

  it('extends presence on each heartbeat, so a beating device outlives many TTLs', async () => {
    await store.connect(start('d1', 's1'));
    for (let i = 0; i < 10; i++) {
      clock.advance(TTL / 2);
      expect(await store.heartbeat({ deviceId: 'd1', sessionId: 's1', instanceId: 'gw-1', now: clock.now(), interval: 500, ttl: TTL })).toBe(true);
      expect(await claim(clock.now(), 100)).toEqual([]);
    }
    const [view] = await store.getDevices(['d1'], clock.now());
    expect(view).toMatchObject({ online: true, lastHeartbeatAt: clock.now(), expiresAt: clock.now() + TTL, interval: 500 });
  });

  it('refuses a heartbeat for an expired or unknown session', async () => {
    await store.connect(start('d1', 's1'));
    expect(await store.heartbeat({ deviceId: 'd1', sessionId: 'other', instanceId: 'gw-1', now: clock.now(), interval: 400, ttl: TTL })).toBe(false);
    expect(await store.heartbeat({ deviceId: 'nobody', sessionId: 's1', instanceId: 'gw-1', now: clock.now(), interval: 400, ttl: TTL })).toBe(false);
    clock.advance(TTL);
    expect(await store.heartbeat({ deviceId: 'd1', sessionId: 's1', instanceId: 'gw-1', now: clock.now(), interval: 400, ttl: TTL })).toBe(false);
    expect(await online('d1')).toBe(false);
  });

  it('replaces the previous session, and the old one can neither refresh nor remove the new one', async () => {
    await store.connect(start('d1', 's1'));
    clock.advance(10);
    expect(await store.connect(start('d1', 's2', { instanceId: 'gw-2' }))).toEqual({
      deviceId: 'd1',
      sessionId: 's1',
      userId: 'u1',
      instanceId: 'gw-1',
    });
    expect(await store.heartbeat({ deviceId: 'd1', sessionId: 's1', instanceId: 'gw-1', now: clock.now(), interval: 400, ttl: TTL })).toBe(false);
    expect(await store.disconnect([ref('d1', 's1')], clock.now(), 'client_close')).toBe(0);
    const [view] = await store.getDevices(['d1'], clock.now());
    expect(view).toMatchObject({ online: true, sessionId: 's2', instanceId: 'gw-2' });
    expect(await store.countOnline(clock.now())).toBe(1);
  });

  it('takes a device offline at once on a clean disconnect, and keeps it known', async () => {
    await store.connect(start('d1', 's1'));
    clock.advance(50);
    expect(await store.disconnect([ref('d1', 's1')], clock.now(), 'client_close')).toBe(1);
    const [view] = await store.getDevices(['d1'], clock.now());
    expect(view).toEqual({
      deviceId: 'd1',
      userId: 'u1',
      online: false,
      platform: 'ios',
      lastHeartbeatAt: clock.now() - 50,
      lastSeenAt: clock.now(),
      seq: 2,
    });
    expect(await store.countOnline(clock.now())).toBe(0);
    expect(await claim(clock.now() + TTL * 10, 100)).toEqual([]);
  });

  it('claims only expired sessions, each once, oldest first, within the limit', async () => {
    await store.connect(start('a', 'sa'));
    clock.advance(100);
    await store.connect(start('b', 'sb', { userId: 'u2' }));
    clock.advance(100);
    await store.connect(start('healthy', 'sh'));
    clock.advance(TTL - 100);
    await store.heartbeat({ deviceId: 'healthy', sessionId: 'sh', instanceId: 'gw-1', now: clock.now(), interval: 400, ttl: TTL });
    clock.advance(100); // a and b expired, healthy was refreshed
    expect(await store.countOnline(clock.now())).toBe(1);
    expect(await claimIn('a', clock.now(), 1)).toEqual([ref('a', 'sa')]);
    expect(await claim(clock.now(), 10)).toEqual([ref('b', 'sb', 'u2')]);
    expect(await claim(clock.now(), 10)).toEqual([]);
    expect(await online('a')).toBe(false);
    expect(await online('healthy')).toBe(true);
    const [a] = await store.getDevices(['a'], clock.now());
    expect(a).toMatchObject({ online: false, lastSeenAt: clock.now() - TTL - 200 });
  });

  it('treats a session as offline the moment its TTL passes, even before a sweep', async () => {
    await store.connect(start('d1', 's1'));
    clock.advance(TTL - 1);
    expect(await online('d1')).toBe(true);
    clock.advance(1);
    expect(await online('d1')).toBe(false);
    expect(await store.countOnline(clock.now())).toBe(0);
  });

  it("lists a user's devices, online and offline, and follows a device to a new user", async () => {
    await store.connect(start('d1', 's1'));
    await store.connect(start('d2', 's2'));
    await store.disconnect([ref('d2', 's2')], clock.now(), 'client_close');
    let devices = await store.listUserDevices('u1', clock.now());
    expect(devices.map((d) => [d.deviceId, d.online]).sort()).toEqual([
      ['d1', true],
      ['d2', false],
    ]);
    await store.connect(start('d2', 's3', { userId: 'u9' }));
    devices = await store.listUserDevices('u1', clock.now());
    expect(devices.map((d) => d.deviceId)).toEqual(['d1']);
    expect((await store.listUserDevices('u9', clock.now())).map((d) => d.deviceId)).toEqual(['d2']);
    expect(await store.listUserDevices('nobody', clock.now())).toEqual([]);
    expect((await store.userDeviceIds('u1', clock.now())).sort()).toEqual(['d1']);
  });

  it('forgets an offline device after the retention period, never an online one', async () => {
    await store.connect(start('gone', 's1'));
    await store.disconnect([ref('gone', 's1')], clock.now(), 'client_close');
    await store.connect(start('stays', 's2', { ttl: RETENTION * 2 }));
    clock.advance(RETENTION + 1);
    expect(await store.getDevices(['gone', 'stays'], clock.now())).toEqual([null, expect.objectContaining({ online: true })]);
    expect((await store.listUserDevices('u1', clock.now())).map((d) => d.deviceId)).toEqual(['stays']);
  });

  it('ends many sessions at once (drain)', async () => {
    for (const id of ['a', 'b', 'c']) await store.connect(start(id, `s-${id}`));
    expect(await store.disconnect([ref('a', 's-a'), ref('b', 's-b'), ref('c', 'stale')], clock.now(), 'client_close')).toBe(2);
    expect(await store.countOnline(clock.now())).toBe(1);
  });

  it('keeps instance records until their TTL, listed by id', async () => {
    await store.touchInstance({ instanceId: 'gw-2', online: 1, lastSeenAt: clock.now() }, 5_000);
    await store.touchInstance({ instanceId: 'gw-1', online: 3, lastSeenAt: clock.now() }, 1_000);
    expect(await store.listInstances(clock.now())).toEqual([
      { instanceId: 'gw-1', online: 3, lastSeenAt: clock.now() },
      { instanceId: 'gw-2', online: 1, lastSeenAt: clock.now() },
    ]);
    clock.advance(1_000);
    expect((await store.listInstances(clock.now())).map((i) => i.instanceId)).toEqual(['gw-2']);
    await store.removeInstance('gw-2');
    expect(await store.listInstances(clock.now())).toEqual([]);
  });

  it('records app state and network, and collects stable-interval samples per network', async () => {
    await store.connect(start('d1', 's1', { network: 'wifi:home' }));
    const beat = (extra: object) =>
      store.heartbeat({ deviceId: 'd1', sessionId: 's1', instanceId: 'gw-1', now: clock.now(), interval: 400, ttl: TTL, ...extra });
    await beat({ appState: 'background' });
    await beat({ network: 'cell:acme', sampleBucket: 30_000 });
    await store.connect(start('d2', 's2'));
    await store.heartbeat({ deviceId: 'd2', sessionId: 's2', instanceId: 'gw-1', now: clock.now(), interval: 400, ttl: TTL, network: 'cell:acme', sampleBucket: 30_000 });
    clock.advance(10);
    await beat({ network: 'wifi:home', sampleBucket: 60_000 });
    const [view] = await store.getDevices(['d1'], clock.now());
    expect(view).toMatchObject({ appState: 'background', network: 'wifi:home' });
    expect(await store.networkHistogram('cell:acme', clock.now())).toEqual({ 30000: 2 });
    expect(await store.networkHistogram('unknown', clock.now())).toEqual({});
    expect(await store.listNetworks(clock.now(), 10)).toEqual([
      { network: 'wifi:home', histogram: { 60000: 1 } },
      { network: 'cell:acme', histogram: { 30000: 2 } },
    ]);
    expect(await store.listNetworks(clock.now(), 1)).toHaveLength(1);
  });

  it("gives a live instance's sessions the grace it published, and ends a dead one's at their TTL", async () => {
    await store.touchInstance({ instanceId: 'gw-1', online: 1, lastSeenAt: clock.now() }, 10 * TTL, 100);
    expect(await store.liveInstances(clock.now())).toEqual(new Map([['gw-1', 100]]));
    await store.connect(start('mine', 's-mine')); // held by gw-1, alive, 100 ms behind
    await store.connect(start('orphan', 's-orphan', { instanceId: 'gw-dead' })); // its instance never reports
    clock.advance(TTL);
    expect(await claim(clock.now(), 10)).toEqual([{ ...ref('orphan', 's-orphan'), instanceId: 'gw-dead' }]);
    clock.advance(99);
    expect(await claim(clock.now(), 10)).toEqual([]);
    // A heartbeat gw-1 handled late, within its grace, still counts; without it the session goes.
    clock.advance(1);
    expect(await claim(clock.now(), 10)).toEqual([ref('mine', 's-mine')]);
  });

  it('sweeps a session under the instance that took the device over', async () => {
    await store.connect(start('d1', 's1'));
    await store.connect(start('d1', 's2', { instanceId: 'gw-2' }));
    clock.advance(TTL);
    const live = new Map([['gw-1', 0], ['gw-2', 0]]);
    expect(await claim(clock.now(), 10, live)).toEqual([{ ...ref('d1', 's2'), instanceId: 'gw-2' }]);
    expect(await claim(clock.now(), 10, live)).toEqual([]);
  });

  it('lets a heartbeat its instance handled late still refresh a session it has not swept (grace)', async () => {
    await store.connect(start('d1', 's1'));
    clock.advance(TTL + 50); // expired 50 ms ago by the clock; the instance was 100 ms behind
    const late = { deviceId: 'd1', sessionId: 's1', instanceId: 'gw-1', now: clock.now(), interval: 400, ttl: TTL };
    expect(await store.heartbeat({ ...late, grace: 40 })).toBe(false);
    expect(await store.heartbeat({ ...late, grace: 100 })).toBe(true);
    expect(await online('d1')).toBe(true);
  });

  it('counts one vote per device and network per DEVICE_SAMPLE_PERIOD_MS, across its sessions, moved up by longer stable intervals', async () => {
    const sample = (sessionId: string, bucket: number, network = 'wifi:shared', deviceId = 'd1') =>
      store.heartbeat({ deviceId, sessionId, instanceId: 'gw-1', now: clock.now(), interval: 400, ttl: TTL, network, sampleBucket: bucket });
    await store.connect(start('d1', 's1'));
    await store.connect(start('d2', 's-d2'));
    await sample('s-d2', 4_000, 'wifi:shared', 'd2');
    await sample('s1', 4_000);
    await sample('s1', 4_000);
    await sample('s1', 9_000, 'cell:other'); // another network is another budget
    expect(await store.networkHistogram('wifi:shared', clock.now())).toEqual({ 4000: 2 });
    // d1 climbs: its one vote follows the longest interval it held, it does not add more.
    await sample('s1', 6_000);
    await sample('s1', 11_000);
    await sample('s1', 9_000); // shorter again (after a lost link): the vote stays at what it held
    expect(await store.networkHistogram('wifi:shared', clock.now())).toEqual({ 4000: 1, 11000: 1 });
    clock.advance(DEVICE_SAMPLE_PERIOD_MS - 1);
    await store.connect(start('d1', 's2')); // a new session is the same device
    expect(await sample('s2', 5_000)).toBe(true); // the heartbeat itself still counts
    expect(await store.networkHistogram('wifi:shared', clock.now())).toEqual({ 4000: 1, 11000: 1 });
    expect(await store.networkHistogram('cell:other', clock.now())).toEqual({ 9000: 1 });
    clock.advance(1); // a new period: a new vote (the histogram keeps the old ones for NETWORK_RETENTION_MS)
    await sample('s2', 5_000);
    expect(await store.networkHistogram('wifi:shared', clock.now())).toEqual({ 4000: 1, 5000: 1, 11000: 1 });
  });

  it('forgets a network nobody sampled for NETWORK_RETENTION_MS, by the caller clock', async () => {
    await store.connect(start('d1', 's1'));
    await store.heartbeat({ deviceId: 'd1', sessionId: 's1', instanceId: 'gw-1', now: clock.now(), interval: 400, ttl: TTL, network: 'cell:acme', sampleBucket: 30_000 });
    clock.advance(NETWORK_RETENTION_MS - 1);
    expect(await store.networkHistogram('cell:acme', clock.now())).toEqual({ 30000: 1 });
    expect(await store.listNetworks(clock.now(), 10)).toHaveLength(1);
    clock.advance(1);
    expect(await store.networkHistogram('cell:acme', clock.now())).toEqual({});
    expect(await store.listNetworks(clock.now(), 10)).toEqual([]);
  });

  it('holds nothing without an end: ended sessions are forgotten after their retention', async () => {
    for (const id of ['a', 'b']) {
      await store.connect(start(id, `s-${id}`, { userId: `u-${id}` }));
      await store.heartbeat({ deviceId: id, sessionId: `s-${id}`, instanceId: 'gw-1', now: clock.now(), interval: 400, ttl: TTL, network: 'wifi:x', sampleBucket: 1_000 });
    }
    expect(await unbounded(store)).toBeGreaterThan(0); // online sessions are held until they end
    await store.disconnect([ref('a', 's-a', 'u-a')], clock.now(), 'client_close');
    clock.advance(TTL); // b goes silent and is swept
    expect(await claim(clock.now(), 10)).toHaveLength(1);
    clock.advance(Math.max(RETENTION, NETWORK_RETENTION_MS));
    await claim(clock.now(), 10);
    await releaseAll(clock.now(), 10);
    expect(await unbounded(store)).toBe(0);
    expect(await store.getDevices(['a', 'b'], clock.now())).toEqual([null, null]);
  });

  describe('events', () => {
    const on = (deviceId: string, sessionId: string, seq: number, extra: object = {}) => [
      'device.online',
      { deviceId, userId: 'u1', sessionId, instanceId: 'gw-1', platform: 'ios', seq, ...extra },
    ];
    const off = (deviceId: string, sessionId: string, reason: string, lastSeenAt: number, seq: number, extra: object = {}) => [
      'device.offline',
      { deviceId, userId: 'u1', sessionId, instanceId: 'gw-1', reason, lastSeenAt, seq, ...extra },
    ];

    it('records device and user transitions with the change, user.* once per transition, seq per device', async () => {
      await store.connect(start('d1', 's1'));
      await store.connect(start('d2', 's2', { platform: undefined, network: 'wifi:home' }));
      expectEvents(await newEvents(), [on('d1', 's1', 1), ['user.online', { userId: 'u1' }], on('d2', 's2', 1, { platform: undefined, network: 'wifi:home' })]);
      clock.advance(10);
      expect(await store.disconnect([ref('d1', 's1')], clock.now(), 'kicked')).toBe(1);
      expectEvents(await newEvents(), [off('d1', 's1', 'kicked', clock.now(), 2)]);
      expect(await store.disconnect([ref('d2', 's2')], clock.now(), 'server_shutdown')).toBe(1);
      expectEvents(await newEvents(), [off('d2', 's2', 'server_shutdown', clock.now(), 2), ['user.offline', { userId: 'u1' }]]);
      await store.connect(start('d1', 's3'));
      expectEvents(await newEvents(), [on('d1', 's3', 3), ['user.online', { userId: 'u1' }]]);
      const [d1, d2] = await store.getDevices(['d1', 'd2'], clock.now());
      expect([d1?.seq, d2?.seq]).toEqual([3, 2]);
    });

    it('on a takeover records the old offline (replaced) before the new online; the old session ending later records nothing', async () => {
      await store.connect(start('d1', 's1'));
      await newEvents();
      clock.advance(5);
      await store.connect(start('d1', 's2', { instanceId: 'gw-2' }));
      expectEvents(await newEvents(), [off('d1', 's1', 'replaced', clock.now(), 2), on('d1', 's2', 3, { instanceId: 'gw-2' })]);
      expect(await store.disconnect([ref('d1', 's1')], clock.now(), 'client_close')).toBe(0);
      expect(await claim(clock.now(), 10, new Map([['gw-1', 0], ['gw-2', 0]]))).toEqual([]);
      // The same session recorded again (a retried call) is no change either.
      expect(await store.connect(start('d1', 's2', { instanceId: 'gw-2' }))).toMatchObject({ sessionId: 's2' });
      // A heartbeat is never an event.
      expect(await store.heartbeat({ deviceId: 'd1', sessionId: 's2', instanceId: 'gw-2', now: clock.now(), interval: 400, ttl: TTL })).toBe(true);
      expectEvents(await newEvents(), []);
      expect((await store.getDevices(['d1'], clock.now()))[0]?.seq).toBe(3);
    });

    it('says heartbeat_timeout for a sweep of a live instance, instance_lost for one that stopped reporting, with the last heartbeat as lastSeenAt', async () => {
      await store.touchInstance({ instanceId: 'gw-1', online: 1, lastSeenAt: clock.now() }, 100 * TTL);
      await store.connect(start('orphan', 's-orphan', { instanceId: 'gw-dead', userId: 'u2' }));
      const orphanAt = clock.now();
      clock.advance(10);
      await store.connect(start('mine', 's-mine'));
      const connectedAt = clock.now();
      await newEvents();
      clock.advance(TTL);
      expect(await claim(clock.now(), 10)).toHaveLength(2);
      expectEvents(await newEvents(), [
        off('orphan', 's-orphan', 'instance_lost', orphanAt, 2, { instanceId: 'gw-dead', userId: 'u2' }),
        ['user.offline', { userId: 'u2' }],
        off('mine', 's-mine', 'heartbeat_timeout', connectedAt, 2),
        ['user.offline', { userId: 'u1' }],
      ]);
    });

    it('goes by the live list the sweeper passes, not by records: its own sessions are heartbeat_timeout even after its record lapsed (a stall)', async () => {
      await store.connect(start('mine', 's-mine')); // gw-1 never reported itself (or its record ran out)
      const mineAt = clock.now();
      clock.advance(10);
      await store.connect(start('theirs', 's-theirs', { userId: 'u2', instanceId: 'gw-3' }));
      const connectedAt = clock.now();
      await newEvents();
      clock.advance(TTL);
      expect(await claim(clock.now(), 10, new Map([['gw-1', 0]]))).toHaveLength(2); // gw-1 sweeping: gw-3 looks dead
      expectEvents(await newEvents(), [
        off('mine', 's-mine', 'heartbeat_timeout', mineAt, 2),
        ['user.offline', { userId: 'u1' }],
        off('theirs', 's-theirs', 'instance_lost', connectedAt, 2, { userId: 'u2', instanceId: 'gw-3' }),
        ['user.offline', { userId: 'u2' }],
      ]);
    });

    it('ends a run-out session that a new connect finds before any sweep with the timeout reason, not replaced', async () => {
      await store.touchInstance({ instanceId: 'gw-1', online: 1, lastSeenAt: clock.now() }, 100 * TTL);
      await store.connect(start('a', 'sa'));
      await store.connect(start('b', 'sb', { instanceId: 'gw-dead' }));
      const connectedAt = clock.now();
      await newEvents();
      clock.advance(TTL);
      await store.connect(start('a', 'sa2'));
      await store.connect(start('b', 'sb2'));
      expectEvents(await newEvents(), [
        off('a', 'sa', 'heartbeat_timeout', connectedAt, 2),
        on('a', 'sa2', 3),
        off('b', 'sb', 'instance_lost', connectedAt, 2, { instanceId: 'gw-dead' }),
        on('b', 'sb2', 3),
      ]);
    });

    it('follows a device to another user: the old user goes offline, the new one online', async () => {
      await store.connect(start('d1', 's1'));
      await newEvents();
      await store.connect(start('d1', 's2', { userId: 'u9' }));
      expectEvents(await newEvents(), [
        off('d1', 's1', 'replaced', clock.now(), 2),
        ['user.offline', { userId: 'u1' }],
        on('d1', 's2', 3, { userId: 'u9' }),
        ['user.online', { userId: 'u9' }],
      ]);
    });

    (ordered ? it : it.skip)('gives unique, increasing ids even when the clock goes back, reads after a cursor, and keeps events EVENT_RETENTION', async () => {
      await store.connect(start('d1', 's1'));
      clock.advance(-5_000); // another instance's clock, behind
      await store.connect(start('d2', 's2'));
      const events = await allEvents();
      expect(events.map((e) => e.type)).toEqual(['device.online', 'user.online', 'device.online']);
      expect(new Set(events.map((e) => e.id)).size).toBe(3);
      expect(events[2]!.timestamp).toBe(clock.now());
      expect(await eventLog(store).read(events[0]!.id, 1, clock.now())).toEqual([events[1]]);
      expect(await eventLog(store).read(events[2]!.id, 10, clock.now())).toEqual([]);
      clock.advance(5_000 + EVENT_RETENTION - 1);
      expect(await allEvents()).toHaveLength(3);
      clock.advance(1);
      expect(await allEvents()).toEqual([]);
      await store.disconnect([ref('d1', 's1')], clock.now(), 'client_close');
      expect((await allEvents()).map((e) => e.data.seq)).toEqual([2]);
    });

    it('records user.online and user.offline once when two devices of a user race', async () => {
      await Promise.all([store.connect(start('a', 'sa')), store.connect(start('b', 'sb', { instanceId: 'gw-2' }))]);
      await Promise.all([store.disconnect([ref('a', 'sa')], clock.now(), 'client_close'), store.disconnect([ref('b', 'sb')], clock.now(), 'client_close')]);
      const types = (await newEvents()).map(([type]) => type);
      expect(types.filter((t) => t === 'user.online')).toHaveLength(1);
      expect(types.filter((t) => t === 'user.offline')).toHaveLength(1);
      if (ordered) {
        expect(types.indexOf('user.online')).toBe(1); // right after the first device's online
        expect(types[types.length - 1]).toBe('user.offline'); // after the last device's offline
      }
    });
  });

  describe('events with a grace (PRESENCE_EVENT_GRACE_MS: flap suppression)', () => {
    const GRACE = 5_000;
    const on = (deviceId: string, sessionId: string, seq: number, extra: object = {}) => [
      'device.online',
      { deviceId, userId: 'u1', sessionId, instanceId: 'gw-1', platform: 'ios', seq, ...extra },
    ];
    const off = (deviceId: string, sessionId: string, reason: string, lastSeenAt: number, seq: number, extra: object = {}) => [
      'device.offline',
      { deviceId, userId: 'u1', sessionId, instanceId: 'gw-1', reason, lastSeenAt, seq, ...extra },
    ];
    const userOn = (userId = 'u1') => ['user.online', { userId }];
    const userOff = (userId = 'u1') => ['user.offline', { userId }];
    const release = () => releaseAll(clock.now(), 100);
    const seqOf = async (id: string) => (await store.getDevices([id], clock.now()))[0]?.seq;

    beforeEach(() => {
      store = makeStore({ eventGraceMs: GRACE });
    });

    it('holds a client_close offline for the grace (presence is offline at once), then records it with its original data and time', async () => {
      await store.connect(start('d1', 's1'));
      expectEvents(await newEvents(), [on('d1', 's1', 1), userOn()]);
      clock.advance(50);
      const endedAt = clock.now();
      expect(await store.disconnect([ref('d1', 's1')], clock.now(), 'client_close')).toBe(1);
      expectEvents(await newEvents(), []);
      // Offline at once; the seq shown is that of its last recorded event until the offline is.
      expect((await store.getDevices(['d1'], clock.now()))[0]).toMatchObject({ online: false, lastSeenAt: endedAt, seq: 1 });
      expect(await store.countOnline(clock.now())).toBe(0);
      clock.advance(GRACE - 1);
      expect(await release()).toBe(0);
      expectEvents(await newEvents(), []);
      clock.advance(1);
      expect(await release()).toBe(1);
      expectEvents(await newEvents(), [off('d1', 's1', 'client_close', endedAt, 2), userOff()]);
      expect(await seqOf('d1')).toBe(2);
      // Its place in the log is now; its timestamp is when the session ended.
      expect((await allEvents()).slice(-2).map((e) => e.timestamp)).toEqual([endedAt, endedAt]);
      expect(await release()).toBe(0);
      expectEvents(await newEvents(), []);
    });

    it('a reconnect within the grace (on another instance) records neither the offline nor the online; seq counts both, leaving a gap', async () => {
      await store.connect(start('d1', 's1'));
      await newEvents();
      await store.disconnect([ref('d1', 's1')], clock.now(), 'client_close');
      clock.advance(GRACE - 1);
      expect(await store.connect(start('d1', 's2', { instanceId: 'gw-2' }))).toBeNull();
      expect(await online('d1')).toBe(true);
      expect(await seqOf('d1')).toBe(1); // a receiver that has seq 1 is up to date
      clock.advance(10 * GRACE);
      expect(await release()).toBe(0);
      expectEvents(await newEvents(), []);
      // The next offline carries the seq after the gap, and the session that was live.
      await store.disconnect([{ ...ref('d1', 's2'), instanceId: 'gw-2' }], clock.now(), 'server_shutdown');
      const endedAt = clock.now();
      clock.advance(GRACE);
      expect(await release()).toBe(1);
      expectEvents(await newEvents(), [off('d1', 's2', 'server_shutdown', endedAt, 4, { instanceId: 'gw-2' }), userOff()]);
      expect(await seqOf('d1')).toBe(4);
    });

    it('a reconnect once the grace ended, before any release, records the held offline first, then the online', async () => {
      await store.connect(start('d1', 's1'));
      await newEvents();
      const endedAt = clock.now();
      await store.disconnect([ref('d1', 's1')], clock.now(), 'client_close');
      clock.advance(GRACE);
      await store.connect(start('d1', 's2'));
      expectEvents(await newEvents(), [off('d1', 's1', 'client_close', endedAt, 2), userOff(), on('d1', 's2', 3), userOn()]);
      expect(await release()).toBe(0);
      expectEvents(await newEvents(), []);
    });

    it('holds swept heartbeat_timeout and instance_lost offlines until their expiry + grace; one swept later than that is recorded at once', async () => {
      await store.touchInstance({ instanceId: 'gw-1', online: 1, lastSeenAt: clock.now() }, 100 * GRACE);
      await store.connect(start('orphan', 's-orphan', { instanceId: 'gw-dead', userId: 'u2' }));
      const orphanAt = clock.now();
      clock.advance(10);
      await store.connect(start('mine', 's-mine'));
      const mineAt = clock.now();
      await newEvents();
      clock.advance(TTL + 100); // swept 100 ms after the expiry
      expect(await claim(clock.now(), 10)).toHaveLength(2);
      expect(await online('mine')).toBe(false);
      expectEvents(await newEvents(), []);
      clock.advance(GRACE - 110 - 1);
      expect(await release()).toBe(0);
      clock.advance(1); // orphan's expiry + grace
      expect(await release()).toBe(1);
      expectEvents(await newEvents(), [off('orphan', 's-orphan', 'instance_lost', orphanAt, 2, { instanceId: 'gw-dead', userId: 'u2' }), userOff('u2')]);
      clock.advance(10);
      expect(await release()).toBe(1);
      expectEvents(await newEvents(), [off('mine', 's-mine', 'heartbeat_timeout', mineAt, 2), userOff()]);
      // A sweep later than expiry + grace has nothing left to wait for.
      await store.connect(start('late', 's-late'));
      const lateAt = clock.now();
      await newEvents();
      clock.advance(TTL + GRACE);
      expect(await claim(clock.now(), 10)).toHaveLength(1);
      expectEvents(await newEvents(), [off('late', 's-late', 'heartbeat_timeout', lateAt, 2), userOff()]);
    });

    it('a run-out session found by a reconnect within its expiry + grace is a flap; after that its offline and user.offline come first', async () => {
      await store.touchInstance({ instanceId: 'gw-1', online: 1, lastSeenAt: clock.now() }, 100 * GRACE);
      await store.connect(start('a', 'sa'));
      await store.connect(start('b', 'sb', { userId: 'u2' }));
      const connectedAt = clock.now();
      await newEvents();
      clock.advance(TTL + GRACE - 1);
      await store.connect(start('a', 'sa2'));
      expectEvents(await newEvents(), []);
      expect(await seqOf('a')).toBe(1);
      clock.advance(1);
      await store.connect(start('b', 'sb2', { userId: 'u2' }));
      expectEvents(await newEvents(), [
        off('b', 'sb', 'heartbeat_timeout', connectedAt, 2, { userId: 'u2' }),
        userOff('u2'),
        on('b', 'sb2', 3, { userId: 'u2' }),
        userOn('u2'),
      ]);
    });

    it.each(['replaced', 'kicked', 'token_expired', 'slow_consumer', 'rate_limited'] as const)('records %s at once', async (reason) => {
      await store.connect(start('d1', 's1'));
      await newEvents();
      if (reason === 'replaced') {
        await store.connect(start('d1', 's2', { instanceId: 'gw-2' }));
        expectEvents(await newEvents(), [off('d1', 's1', 'replaced', clock.now(), 2), on('d1', 's2', 3, { instanceId: 'gw-2' })]);
      } else {
        await store.disconnect([ref('d1', 's1')], clock.now(), reason);
        expectEvents(await newEvents(), [off('d1', 's1', reason, clock.now(), 2), userOff()]);
      }
    });

    it('device A held, device B of the same user comes online, A released: no user.* in between', async () => {
      await store.connect(start('a', 'sa'));
      await newEvents();
      const endedAt = clock.now();
      await store.disconnect([ref('a', 'sa')], clock.now(), 'client_close');
      clock.advance(100);
      await store.connect(start('b', 'sb'));
      expectEvents(await newEvents(), [on('b', 'sb', 1)]); // receivers still know the user online (a)
      clock.advance(GRACE);
      await release();
      expectEvents(await newEvents(), [off('a', 'sa', 'client_close', endedAt, 2)]); // b is online
      await store.disconnect([ref('b', 'sb')], clock.now(), 'client_close');
      clock.advance(GRACE);
      await release();
      expectEvents(await newEvents(), [off('b', 'sb', 'client_close', clock.now() - GRACE, 2), userOff()]);
    });

    it('two devices held: one back in time keeps the user online; both released give user.offline once, after the last', async () => {
      await store.connect(start('a', 'sa'));
      await store.connect(start('b', 'sb'));
      await newEvents();
      await store.disconnect([ref('a', 'sa'), ref('b', 'sb')], clock.now(), 'client_close');
      const endedAt = clock.now();
      clock.advance(GRACE / 2);
      await store.connect(start('a', 'sa2'));
      clock.advance(GRACE / 2);
      expect(await release()).toBe(1);
      expectEvents(await newEvents(), [off('b', 'sb', 'client_close', endedAt, 2)]);
      // Both held, released in one pass and in two.
      await store.connect(start('b', 'sb2'));
      expectEvents(await newEvents(), [on('b', 'sb2', 3)]);
      await store.disconnect([ref('a', 'sa2')], clock.now(), 'heartbeat_timeout');
      clock.advance(1);
      await store.disconnect([ref('b', 'sb2')], clock.now(), 'client_close');
      clock.advance(GRACE);
      expect(await store.releaseHeldOfflines(store.partitionOf('a'), clock.now(), 1)).toBe(1);
      expectEvents(await newEvents(), [off('a', 'sa2', 'heartbeat_timeout', clock.now() - GRACE - 1, 4)]);
      expect(await release()).toBe(1);
      expectEvents(await newEvents(), [off('b', 'sb2', 'client_close', clock.now() - GRACE, 4), userOff()]);
    });

    it('a device moving to another user within the grace records its held offline at once, with the old user going offline', async () => {
      await store.connect(start('d1', 's1'));
      await newEvents();
      const endedAt = clock.now();
      await store.disconnect([ref('d1', 's1')], clock.now(), 'client_close');
      clock.advance(10);
      await store.connect(start('d1', 's2', { userId: 'u9' }));
      expectEvents(await newEvents(), [off('d1', 's1', 'client_close', endedAt, 2), userOff(), on('d1', 's2', 3, { userId: 'u9' }), userOn('u9')]);
      expect(await release()).toBe(0);
    });

    it('user.online and user.offline alternate once per transition through any mix of flaps, takeovers and releases', async () => {
      // A seeded walk over two devices of one user: the user.* receivers see must alternate, start
      // with online, and agree with whether a device was last announced online.
      let x = 7;
      const rand = (n: number) => ((x = (x * 1_103_515_245 + 12_345) % 2 ** 31), Math.floor(x / 65_536) % n);
      const sessions: Record<string, string | undefined> = {};
      let n = 0;
      for (let step = 0; step < 300; step++) {
        const id = rand(2) === 0 ? 'a' : 'b';
        const action = rand(4);
        if (action === 0) await store.connect(start(id, (sessions[id] = `s${n++}`), { instanceId: rand(2) ? 'gw-1' : 'gw-2' }));
        else if (action === 1 && sessions[id]) await store.disconnect([ref(id, sessions[id])], clock.now(), rand(2) ? 'client_close' : 'kicked');
        else if (action === 2) await release();
        clock.advance(rand(3) * 2_000);
      }
      clock.advance(GRACE);
      await release();
      const events = await allEvents();
      const users = events.filter((e) => e.type.startsWith('user.')).map((e) => e.type);
      users.forEach((t, i) => expect([i, t]).toEqual([i, i % 2 === 0 ? 'user.online' : 'user.offline']));
      // Per device: online and offline alternate and seq only grows.
      for (const id of ['a', 'b']) {
        const mine = events.filter((e) => e.data.deviceId === id);
        mine.forEach((e, i) => expect([id, i, e.type]).toEqual([id, i, i % 2 === 0 ? 'device.online' : 'device.offline']));
        const seqs = mine.map((e) => e.data.seq as number);
        expect(seqs).toEqual([...seqs].sort((p, q) => p - q));
      }
      // The user is announced online exactly when a device is.
      const lastOf = (id: string) => events.filter((e) => e.data.deviceId === id).at(-1)?.type;
      const anyOnline = ['a', 'b'].some((id) => lastOf(id) === 'device.online');
      expect(users.at(-1) === 'user.online').toBe(anyOnline);
      expect(users.length).toBeGreaterThan(4);
    });

    it('holds nothing without an end once held offlines are released and retention passes', async () => {
      await store.connect(start('a', 's-a', { userId: 'u-a' }));
      await store.disconnect([ref('a', 's-a', 'u-a')], clock.now(), 'client_close');
      await store.connect(start('b', 's-b', { userId: 'u-b' }));
      await store.disconnect([ref('b', 's-b', 'u-b')], clock.now(), 'client_close');
      await store.connect(start('b', 's-b2', { userId: 'u-b' }));
      await store.disconnect([ref('b', 's-b2', 'u-b')], clock.now(), 'client_close');
      clock.advance(GRACE);
      expect(await release()).toBe(2);
      clock.advance(RETENTION);
      await claim(clock.now(), 10);
      expect(await unbounded(store)).toBe(0);
    });
  });

  it('answers ping', async () => {
    await expect(store.ping()).resolves.toBeUndefined();
  });
}

describe('MemoryPresenceStore', () => {
  presenceStoreCases({
    make: (o) => new MemoryPresenceStore(RETENTION, new MemoryEventLog(EVENT_RETENTION), o?.eventGraceMs),
    unbounded: async (store) => (store as MemoryPresenceStore).footprint,
    eventLog: (store) => (store as MemoryPresenceStore).events,
    ordered: true,
  });
});

type Client = Redis | Cluster;

/** One way of running the Redis store: a single Redis with either layout, or a real 3-master Cluster. */
interface Backend {
  client: Client;
  layout: KeyLayout;
  /** Master nodes (to scan or count keys on each). */
  masters: () => Redis[];
  duplicate: () => Client;
}

async function scanKeys(b: Backend, pattern: string): Promise<[Redis, string][]> {
  const out: [Redis, string][] = [];
  for (const node of b.masters()) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      for (const key of keys) out.push([node, key]);
      cursor = next;
    } while (cursor !== '0');
  }
  return out;
}

async function deleteAll(b: Backend, prefix: string): Promise<void> {
  for (const [node, key] of await scanKeys(b, `${prefix}*`)) await node.del(key);
}

async function withoutTtl(b: Backend, prefix: string, except: string[]): Promise<number> {
  let count = 0;
  for (const [node, key] of await scanKeys(b, `${prefix}*`)) {
    if (except.some((e) => key.endsWith(e))) continue;
    if ((await node.pttl(key)) === -1) count++;
  }
  return count;
}

/**
 * Every partition's event stream merged for the tests, each new batch in (ms, partition, n) order
 * after what an earlier read returned (ids: positions in this reader). The product's pull reader
 * over partitions is src/events' business; this one only serves the assertions here.
 */
class PartitionLogReader {
  private readonly log: EventEnvelope[] = [];
  private readonly last = new Map<string, string>();
  constructor(
    private readonly b: Backend,
    private readonly prefix: string,
  ) {}

  async read(after: string | undefined, count: number): Promise<EventEnvelope[]> {
    const fresh: { p: number; ms: number; n: number; e: EventEnvelope }[] = [];
    const index = new Map(Array.from({ length: this.b.layout.partitions }, (_, p) => [`${this.b.layout.at(p)}events`, p]));
    for (const [, key] of await scanKeys(this.b, `${this.prefix}*events`)) {
      const p = index.get(key);
      if (p === undefined) continue;
      const from = this.last.get(key);
      const entries = await this.b.client.xrange(key, from ? `(${from}` : '-', '+');
      if (entries.length) this.last.set(key, entries[entries.length - 1]![0]);
      for (const [id, fields] of entries) {
        const [ms, n] = id.split('-').map(Number) as [number, number];
        fresh.push({ p, ms, n, e: toEnvelope(id, fields) });
      }
    }
    fresh.sort((x, y) => x.ms - y.ms || x.p - y.p || x.n - y.n);
    for (const f of fresh) this.log.push({ ...f.e, id: String(this.log.length).padStart(9, '0') });
    const from = after === undefined ? 0 : Number(after) + 1;
    return this.log.slice(from, from + count);
  }
}

/** A store whose process dies between its device scripts and their user syncs. */
class KilledBeforeUserSync extends RedisPresenceStore {
  protected override async syncUsers(): Promise<void> {}
}

const MODES = ['single Redis, one partition', 'single Redis, 1024 partitions', '3-master Cluster'] as const;

describe.each(MODES)('RedisPresenceStore (real Redis: %s)', (mode) => {
  const prefix = uniquePrefix('presence');
  const cluster = mode === '3-master Cluster';
  let servers: Awaited<ReturnType<typeof startRedisCluster>> | undefined;
  const b = {} as Backend;
  const extra: Client[] = [];
  const ordered = mode === 'single Redis, one partition';
  const P = (name: string) => b.layout.of(name);
  const C = () => b.layout.control;
  const logOf = (): Pick<EventLog, 'read'> =>
    ordered ? new RedisEventLog(b.client, prefix, EVENT_RETENTION) : { read: (after, count) => reader.read(after, count) };
  let reader: PartitionLogReader;

  beforeAll(async () => {
    if (cluster) {
      servers = await startRedisCluster();
      const nodes = servers.nodes.map((n) => ({ host: '127.0.0.1', port: n.port }));
      const make = () => new Cluster(nodes, { enableAutoPipelining: true });
      b.client = make();
      b.duplicate = () => {
        const c = make();
        extra.push(c);
        return c;
      };
      b.masters = () => (b.client as Cluster).nodes('master');
      b.layout = new KeyLayout(prefix, true);
      await b.client.ping();
    } else {
      const client = new Redis(testRedisUrl(), { enableAutoPipelining: true });
      b.client = client;
      b.duplicate = () => {
        const c = client.duplicate();
        extra.push(c);
        return c;
      };
      b.masters = () => [client];
      b.layout = new KeyLayout(prefix, mode === 'single Redis, 1024 partitions');
    }
  }, 30_000);
  beforeEach(() => {
    reader = new PartitionLogReader(b, prefix);
  });
  afterEach(async () => {
    await Promise.all(extra.splice(0).map((c) => c.quit().catch(() => undefined)));
    await deleteAll(b, prefix);
  });
  afterAll(async () => {
    await b.client.quit();
    servers?.kill();
  });

  const store = (options: RedisPresenceOptions = {}, client: Client = b.client) =>
    new RedisPresenceStore(client, b.layout, RETENTION, { eventRetentionMs: EVENT_RETENTION, ...options });

  presenceStoreCases({
    make: (o) => store({ eventGraceMs: o?.eventGraceMs }),
    unbounded: () => withoutTtl(b, prefix, ['networks']),
    eventLog: () => logOf(),
    ordered,
  });

  it('keeps the documented key layout with a real TTL on the presence key', async () => {
    const s = store();
    const now = Date.now();
    await s.connect({ deviceId: 'd1', sessionId: 's1', userId: 'u1', instanceId: 'gw-1', now, interval: 4_000, ttl: 10_000 });
    if (!cluster && b.layout.partitions === 1) expect(P('d1')).toBe(prefix); // the contract's names on a single Redis
    expect(await b.client.get(`${P('d1')}presence:d1`)).toBe('s1');
    const pttl = await b.client.pttl(`${P('d1')}presence:d1`);
    expect(pttl).toBeGreaterThan(9_000);
    expect(pttl).toBeLessThanOrEqual(10_000);
    expect(Number(await b.client.zscore(`${P('d1')}presence:expiry`, 'd1'))).toBe(now + 10_000);
    expect(await b.client.zrange(`${P('u1')}user:u1:devices`, '0', '-1')).toEqual(['d1']);
    expect(await b.client.zcard(`${P('d1')}usersync`)).toBe(0); // applied and dequeued
    await s.heartbeat({ deviceId: 'd1', sessionId: 's1', instanceId: 'gw-1', now, interval: 8_000, ttl: 20_000 });
    expect(await b.client.pttl(`${P('d1')}presence:d1`)).toBeGreaterThan(19_000);
    await s.disconnect([{ deviceId: 'd1', sessionId: 's1', userId: 'u1', instanceId: 'gw-1' }], now, 'client_close');
    expect(await b.client.exists(`${P('d1')}presence:d1`)).toBe(0);
    expect(await b.client.pttl(`${P('d1')}device:d1`)).toBeGreaterThan(RETENTION - 60_000);
    // Versions guard against late user syncs, which only a layout with several partitions has.
    if (b.layout.partitions > 1) expect(await b.client.pttl(`${P('u1')}user:u1:ver`)).toBeGreaterThan(RETENTION - 60_000);
    else expect(await b.client.exists(`${P('u1')}user:u1:ver`)).toBe(0);
    await s.touchInstance({ instanceId: 'gw-1', online: 1, lastSeenAt: now }, 15_000, 30);
    expect(JSON.parse((await b.client.get(`${C()}instance:gw-1`))!)).toEqual({ online: 1, lastSeenAt: now, expiresAt: now + 15_000, delay: 30 });
    expect(Number(await b.client.zscore(`${C()}instances`, 'gw-1'))).toBe(now);
  });

  it('brings the presence key back when a heartbeat within the grace finds it already expired in Redis', async () => {
    const s = store();
    const now = Date.now();
    await s.connect({ deviceId: 'd1', sessionId: 's1', userId: 'u1', instanceId: 'gw-1', now, interval: 400, ttl: 50 });
    for (let i = 0; i < 200 && (await b.client.exists(`${P('d1')}presence:d1`)) === 1; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await b.client.exists(`${P('d1')}presence:d1`)).toBe(0);
    // The instance was behind: it handles the beat as of `now + 40`, within its grace of the expiry.
    expect(await s.heartbeat({ deviceId: 'd1', sessionId: 's1', instanceId: 'gw-1', now: now + 40, interval: 400, ttl: 10_000, grace: 1_000 })).toBe(true);
    expect(await b.client.get(`${P('d1')}presence:d1`)).toBe('s1');
    expect(await b.client.pttl(`${P('d1')}presence:d1`)).toBeGreaterThan(9_000);
  });

  it('hands each expired session to exactly one of several concurrent sweepers', async () => {
    // Three instances sweeping (a lease handover) the sessions of a fourth that stopped reporting.
    const stores = [0, 1, 2].map(() => store({}, b.duplicate()));
    const now = 1_000_000;
    const ids = Array.from({ length: 300 }, (_, i) => `d${i}`);
    await Promise.all(ids.map((id, i) => stores[0]!.connect({ deviceId: id, sessionId: `s${i}`, userId: 'u', instanceId: 'gw', now, interval: 400, ttl: 1_000 })));
    const parts = [...b.layout.byPartition(ids, (id) => id).keys()];
    const none = new Map<string, number>();
    const claimed = await Promise.all(stores.flatMap((s) => parts.flatMap((p) => [s.claimExpired(p, now + 1_000, 1, none), s.claimExpired(p, now + 1_000, 200, none)])));
    const got = claimed.flat().map((r) => r.deviceId);
    expect(got).toHaveLength(300);
    expect(new Set(got).size).toBe(300);
  });

  it('lands each event in the same atomic step as its change (snapshots by MULTI on another connection)', async () => {
    const s = store();
    const readerClient = b.duplicate();
    const now = Date.now();
    let writing = true;
    const writer = (async () => {
      for (let i = 0; i < 150; i++) {
        await s.connect({ deviceId: 'd1', sessionId: `s${i}`, userId: 'u1', instanceId: `gw-${i % 2}`, now, interval: 400, ttl: 10_000 });
        if (i % 3 === 0) await s.disconnect([{ deviceId: 'd1', sessionId: `s${i}`, userId: 'u1', instanceId: `gw-${i % 2}` }], now, 'client_close');
      }
    })().finally(() => (writing = false));
    let snapshots = 0;
    while (writing || snapshots === 0) {
      // The device hash and its partition's stream share a slot: one MULTI, also on a Cluster.
      const replies = await readerClient.multi().hmget(`${P('d1')}device:d1`, 'sessionId', 'seq').xrevrange(`${P('d1')}events`, '+', '-', 'COUNT', 4).exec();
      const [sessionId, seq] = replies![0]![1] as [string | null, string | null];
      const tail = (replies![1]![1] as [string, string[]][]).map(([, f]) => ({ type: f[1], data: JSON.parse(f[5]!) as Record<string, unknown> }));
      const last = tail.find((e) => e.type!.startsWith('device.'));
      if (seq === null) {
        expect(last).toBeUndefined();
      } else {
        // What the hash says is what the newest device event says: never one without the other.
        expect(last?.data.seq).toBe(Number(seq));
        expect(last?.type).toBe(sessionId ? 'device.online' : 'device.offline');
        if (sessionId) expect(last?.data.sessionId).toBe(sessionId);
        snapshots++;
      }
    }
    await writer;
    expect(snapshots).toBeGreaterThan(0);
  });

  it('records each transition once when two instances race (separate connections)', async () => {
    const [a, c] = [store({}, b.duplicate()), store({}, b.duplicate())];
    const now = Date.now();
    const start = (deviceId: string, sessionId: string, instanceId: string) => ({ deviceId, sessionId, userId: 'u1', instanceId, now, interval: 400, ttl: 10_000 });
    for (let round = 0; round < 20; round++) {
      // Two devices of one user coming online on two instances, and one device reconnecting on both.
      await Promise.all([a.connect(start(`x${round}`, `xa${round}`, 'gw-a')), c.connect(start(`y${round}`, `yb${round}`, 'gw-b'))]);
      await Promise.all([a.connect(start(`x${round}`, `xa2-${round}`, 'gw-a')), c.connect(start(`x${round}`, `xb2-${round}`, 'gw-b'))]);
      const [x] = await a.getDevices([`x${round}`], now);
      await Promise.all([
        a.disconnect([{ deviceId: `x${round}`, sessionId: x!.sessionId!, userId: 'u1', instanceId: x!.instanceId! }], now, 'client_close'),
        c.disconnect([{ deviceId: `y${round}`, sessionId: `yb${round}`, userId: 'u1', instanceId: 'gw-b' }], now, 'client_close'),
      ]);
    }
    const events = await logOf().read(undefined, 1_000, now);
    const users = events.filter((e) => e.type.startsWith('user.')).map((e) => e.type);
    expect(users).toEqual(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? 'user.online' : 'user.offline')));
    // Per device, seq counts up by one in log order, across both instances.
    const seqs = new Map<string, number[]>();
    for (const e of events.filter((e) => e.type.startsWith('device.'))) {
      const id = e.data.deviceId as string;
      seqs.set(id, [...(seqs.get(id) ?? []), e.data.seq as number]);
    }
    for (const [id, list] of seqs) expect([id, list]).toEqual([id, list.map((_, i) => i + 1)]);
    expect(seqs.get('x0')).toHaveLength(6); // online, replaced + online, replaced + online, offline
  });

  it('gives alternating user.online / user.offline, once per transition, when two instances race on devices of one user in different partitions', async () => {
    const [a, c] = [store({}, b.duplicate()), store({}, b.duplicate())];
    // Devices of u1 in as many partitions as the layout has (all in one with one partition).
    const devices = Array.from({ length: 8 }, (_, i) => `dev-${i}`);
    if (b.layout.partitions > 1) expect(new Set(devices.map((d) => b.layout.partitionOf(d))).size).toBeGreaterThan(4);
    let now = Date.now();
    let expected = 0;
    for (let round = 0; round < 15; round++) {
      now += 10;
      const on = devices.map((d, i) => (i % 2 === 0 ? a : c).connect({ deviceId: d, sessionId: `${d}-${round}`, userId: 'u1', instanceId: i % 2 === 0 ? 'gw-a' : 'gw-b', now, interval: 400, ttl: 10_000 }));
      await Promise.all(on);
      now += 10;
      await Promise.all(devices.map((d, i) => (i % 3 === 0 ? a : c).disconnect([{ deviceId: d, sessionId: `${d}-${round}`, userId: 'u1', instanceId: 'gw-a' }], now, 'client_close')));
      expected += 2;
    }
    const users = (await logOf().read(undefined, 10_000, now)).filter((e) => e.type.startsWith('user.')).map((e) => e.type);
    expect(users).toEqual(Array.from({ length: expected }, (_, i) => (i % 2 === 0 ? 'user.online' : 'user.offline')));
  });

  it('still records user.* when the process dies between a device script and its user sync: the partition tick replays it after 2 s', async () => {
    const killed = new KilledBeforeUserSync(b.client, b.layout, RETENTION, { eventRetentionMs: EVENT_RETENTION });
    const holder = store();
    const now = Date.now();
    const dev = 'dk-1';
    await killed.connect({ deviceId: dev, sessionId: 's1', userId: 'uk', instanceId: 'gw-k', now, interval: 400, ttl: 10_000 });
    await killed.disconnect([{ deviceId: dev, sessionId: 's1', userId: 'uk', instanceId: 'gw-k' }], now + 5, 'client_close');
    await killed.connect({ deviceId: dev, sessionId: 's2', userId: 'uk', instanceId: 'gw-k', now: now + 10, interval: 400, ttl: 10_000 });
    const types = async () => (await logOf().read(undefined, 100, now)).filter((e) => e.type.startsWith('user.')).map((e) => e.type);
    if (b.layout.partitions === 1) {
      // One partition: the user sync runs inside the device script, nothing is left to repair.
      expect(await types()).toEqual(['user.online', 'user.offline', 'user.online']);
      return;
    }
    expect(await types()).toEqual([]);
    expect(await b.client.zrange(`${P(dev)}usersync`, '0', '-1')).toEqual([dev]);
    expect(JSON.parse((await b.client.get(`${P(dev)}usq:${dev}`))!)).toHaveLength(3);
    const p = b.layout.partitionOf(dev);
    await holder.releaseHeldOfflines(p, now + 1_000, 100); // too early: a live caller may still be applying them
    expect(await types()).toEqual([]);
    await holder.releaseHeldOfflines(p, now + 10 + USER_SYNC_REPAIR_AFTER_MS, 100);
    expect(await types()).toEqual(['user.online', 'user.offline', 'user.online']);
    expect(await b.client.zcard(`${P(dev)}usersync`)).toBe(0);
    expect(await b.client.exists(`${P(dev)}usq:${dev}`)).toBe(0);
    // A late or repeated sync of the same records is a no-op (versions).
    await holder.releaseHeldOfflines(p, now + 20 + USER_SYNC_REPAIR_AFTER_MS, 100);
    expect(await types()).toEqual(['user.online', 'user.offline', 'user.online']);
    expect(await holder.listUserDevices('uk', now + 20)).toMatchObject([{ deviceId: dev, online: true }]);
  });

  it('holds an offline in the documented keys (each with a TTL), taken and recorded in one step', async () => {
    const s = store({ eventGraceMs: 5_000 });
    const now = Date.now();
    await s.connect({ deviceId: 'd1', sessionId: 's1', userId: 'u1', instanceId: 'gw-1', now, interval: 4_000, ttl: 10_000 });
    await s.disconnect([{ deviceId: 'd1', sessionId: 's1', userId: 'u1', instanceId: 'gw-1' }], now + 10, 'client_close');
    expect(await b.client.exists(`${P('d1')}presence:d1`)).toBe(0); // presence is not delayed
    const held = await b.client.hgetall(`${P('d1')}heldoff:d1`);
    expect(held).toMatchObject({ userId: 'u1', due: String(now + 5_010), ts: String(now + 10) });
    expect(JSON.parse(held.data!)).toMatchObject({ deviceId: 'd1', reason: 'client_close', seq: 2, lastSeenAt: now + 10 });
    expect(await b.client.pttl(`${P('d1')}heldoff:d1`)).toBeGreaterThan(RETENTION - 60_000);
    expect(Number(await b.client.zscore(`${P('d1')}heldoff:due`, 'd1'))).toBe(now + 5_010);
    expect(await b.client.smembers(`${P('u1')}user:u1:held`)).toEqual(['d1']);
    expect(await b.client.pttl(`${P('u1')}user:u1:held`)).toBeGreaterThan(RETENTION - 60_000);
    expect(await b.client.hmget(`${P('d1')}device:d1`, 'seq', 'eventSeq')).toEqual(['2', '1']);
    expect(await s.releaseHeldOfflines(b.layout.partitionOf('d1'), now + 5_010, 10)).toBe(1);
    expect(await b.client.hget(`${P('d1')}device:d1`, 'eventSeq')).toBe('2');
    expect(await b.client.exists(`${P('d1')}heldoff:d1`)).toBe(0);
    expect(await b.client.exists(`${P('d1')}heldoff:due`)).toBe(0);
    expect(await b.client.exists(`${P('u1')}user:u1:held`)).toBe(0);
  });

  it('records each held offline once when several instances release at once (separate connections)', async () => {
    const stores = [0, 1, 2].map(() => store({ eventGraceMs: 1_000 }, b.duplicate()));
    const now = Date.now();
    const refs = Array.from({ length: 300 }, (_, i) => ({ deviceId: `d${i}`, sessionId: `s${i}`, userId: `u${i % 30}`, instanceId: 'gw-dead' }));
    await Promise.all(refs.map((s) => stores[0]!.connect({ ...s, now, interval: 400, ttl: 10_000 })));
    await stores[0]!.disconnect(refs, now, 'server_shutdown');
    const parts = [...b.layout.byPartition(refs, (r) => r.deviceId).keys()];
    const released = await Promise.all(stores.flatMap((s) => parts.flatMap((p) => [s.releaseHeldOfflines(p, now + 1_000, 1), s.releaseHeldOfflines(p, now + 1_000, 200)])));
    let more = 0;
    for (const p of parts) more += await stores[1]!.releaseHeldOfflines(p, now + 1_000, 1_000);
    expect(released.reduce((x, y) => x + y, 0) + more).toBe(300);
    const events = (await logOf().read(undefined, 1_000, now)).filter((e) => e.type.endsWith('offline'));
    expect(events.filter((e) => e.type === 'device.offline').map((e) => e.data.deviceId as string).sort()).toEqual(refs.map((r) => r.deviceId).sort());
    expect(new Set(events.filter((e) => e.type === 'user.offline').map((e) => e.data.userId)).size).toBe(30);
    expect(events.filter((e) => e.type === 'user.offline')).toHaveLength(30);
    if (ordered) {
      // Each user.offline comes after all of that user's device offlines.
      for (const u of events.filter((e) => e.type === 'user.offline')) {
        const at = events.indexOf(u);
        expect(events.slice(at + 1).some((e) => e.data.userId === u.data.userId)).toBe(false);
      }
    }
  });

  it('two instances racing on the reconnect of a device whose offline is held record consistent events', async () => {
    const [a, c] = [store({ eventGraceMs: 5_000 }, b.duplicate()), store({ eventGraceMs: 5_000 }, b.duplicate())];
    const now = Date.now();
    const start = (deviceId: string, sessionId: string, instanceId: string, at: number) => ({ deviceId, sessionId, userId: `u-${deviceId}`, instanceId, now: at, interval: 400, ttl: 10_000 });
    for (let round = 0; round < 20; round++) {
      const id = `x${round}`;
      const p = b.layout.partitionOf(id);
      await a.connect(start(id, `s0-${round}`, 'gw-a', now));
      await a.disconnect([{ deviceId: id, sessionId: `s0-${round}`, userId: `u-${id}`, instanceId: 'gw-a' }], now, 'client_close');
      // Within the grace on even rounds, after it on odd ones; both instances at once.
      const at = now + (round % 2 === 0 ? 1_000 : 6_000);
      await Promise.all([a.connect(start(id, `sa-${round}`, 'gw-a', at)), c.connect(start(id, `sb-${round}`, 'gw-b', at))]);
      await Promise.all([a.releaseHeldOfflines(p, at, 10), c.releaseHeldOfflines(p, at, 10)]);
    }
    const events = await logOf().read(undefined, 1_000, now);
    for (let round = 0; round < 20; round++) {
      const mine = events.filter((e) => e.data.deviceId === `x${round}`).map((e) => [e.type, e.data.reason, e.data.seq]);
      // One reconnect wins the race, the other takes it over (replaced): seq 3 and 4 are the racing
      // sessions, seq 2 the held offline, dropped with the first online within the grace.
      if (round % 2 === 0) {
        expect(mine).toEqual([['device.online', undefined, 1], ['device.offline', 'replaced', 4], ['device.online', undefined, 5]]);
      } else {
        expect(mine).toEqual([
          ['device.online', undefined, 1],
          ['device.offline', 'client_close', 2],
          ['device.online', undefined, 3],
          ['device.offline', 'replaced', 4],
          ['device.online', undefined, 5],
        ]);
      }
      // Its user was online throughout within the grace; offline, then online again after it.
      const users = events.filter((e) => e.data.userId === `u-x${round}` && e.type.startsWith('user.')).map((e) => e.type);
      expect(users).toEqual(round % 2 === 0 ? ['user.online'] : ['user.online', 'user.offline', 'user.online']);
    }
  });

  it('counts the online sessions over every partition, and lists instances with their records', async () => {
    const s = store();
    const now = Date.now();
    const ids = Array.from({ length: 40 }, (_, i) => `c${i}`);
    await Promise.all(ids.map((id, i) => s.connect({ deviceId: id, sessionId: `s${i}`, userId: `u${i}`, instanceId: 'gw-1', now, interval: 400, ttl: i < 10 ? 100 : 10_000 })));
    expect(await s.countOnline(now)).toBe(40);
    expect(await s.countOnline(now + 100)).toBe(30);
    await s.touchInstance({ instanceId: 'gw-2', online: 3, lastSeenAt: now }, 1_000, 7);
    await s.touchInstance({ instanceId: 'gw-1', online: 40, lastSeenAt: now }, 5_000);
    expect(await s.listInstances(now + 500)).toEqual([
      { instanceId: 'gw-1', online: 40, lastSeenAt: now },
      { instanceId: 'gw-2', online: 3, lastSeenAt: now },
    ]);
    expect(await s.liveInstances(now + 1_000)).toEqual(new Map([['gw-1', 0]]));
    await s.removeInstance('gw-1');
    expect(await s.listInstances(now)).toEqual([{ instanceId: 'gw-2', online: 3, lastSeenAt: now }]);
    // Cached for countCacheMs on the caller's clock.
    const cached = store({ countCacheMs: 1_000 });
    expect(await cached.countOnline(now + 100)).toBe(30);
    await s.disconnect([{ deviceId: 'c20', sessionId: 's20', userId: 'u20', instanceId: 'gw-1' }], now + 100, 'client_close');
    expect(await cached.countOnline(now + 1_099)).toBe(30);
    expect(await cached.countOnline(now + 1_100)).toBe(29);
  });

  (cluster ? it : it.skip)(
    'spreads the keys of 4k devices over the 3 masters within 10 % of each other',
    async () => {
      const s = store();
      const now = Date.now();
      // 4,000 devices (some 22,000 keys): a fair spread is within 2-3 % per master.
      const ids = Array.from({ length: 4_000 }, (_, i) => `spread-${i}`);
      for (let i = 0; i < ids.length; i += 500) {
        await Promise.all(ids.slice(i, i + 500).map((id) => s.connect({ deviceId: id, sessionId: `s-${id}`, userId: `user-${id}`, instanceId: 'gw-1', now, interval: 400, ttl: 60_000 })));
      }
      const counts: number[] = [];
      for (const node of b.masters()) {
        let n = 0;
        let cursor = '0';
        do {
          const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 5_000);
          n += keys.length;
          cursor = next;
        } while (cursor !== '0');
        counts.push(n);
      }
      expect(counts).toHaveLength(3);
      const mean = counts.reduce((x, y) => x + y, 0) / 3;
      // presence, device, user devices and versions per device; per partition an expiry index and a stream.
      expect(3 * mean).toBeGreaterThan(4 * ids.length);
      expect((Math.max(...counts) - Math.min(...counts)) / mean).toBeLessThan(0.1);
    },
    120_000,
  );

  (mode === '3-master Cluster' ? it.skip : it)('costs one round trip per heartbeat (one EVALSHA), and writes only what changed', async () => {
    const s = store();
    const client = b.client as Redis;
    const now = Date.now();
    // TTL 2.5 intervals, as the policy gives: the expiry index moves at every other beat.
    await s.connect({ deviceId: 'd1', sessionId: 's1', userId: 'u1', instanceId: 'gw-1', now, interval: 400, ttl: 1_000 });
    // What the session's holder knows its record holds, kept as SessionService keeps it.
    const recorded = { interval: 400, expiresAt: now + 1_000, indexAt: now + 1_000 };
    const beat = async (at: number, knows = true) => {
      const u: HeartbeatUpdate = { deviceId: 'd1', sessionId: 's1', instanceId: 'gw-1', now: at, interval: 400, ttl: 1_000, recordedInterval: recorded.interval };
      if (knows) Object.assign(u, { recordedExpiresAt: recorded.expiresAt, recordedIndexAt: recorded.indexAt });
      recorded.indexAt = indexAfter(u);
      recorded.expiresAt = at + 1_000;
      const seen = await redisCommandsDuring(client, prefix, async () => expect(await s.heartbeat(u)).toBe(true));
      expect(seen.filter(([name]) => name === 'evalsha')).toHaveLength(1);
      return {
        commands: seen.map(([name]) => name!).filter((c) => c !== 'evalsha' && c !== 'eval'),
        writes: seen.filter(([name]) => name === 'hset').map((args) => args.slice(2)),
      };
    };
    // The holder knows the session live: one SET both checks the presence key still holds it and
    // extends it, and the record gets the new times; the index entry (due at now + 1000) cannot
    // come due before the next beat, so it stays. The record is not read.
    const first = await beat(now + 400);
    expect(first.commands).toEqual(['set', 'hset']);
    // Same interval: only the heartbeat's time and the new expiry (lastSeenAt follows lastHeartbeatAt while live).
    expect(first.writes).toEqual([['lastHeartbeatAt', String(now + 400), 'expiresAt', String(now + 1_400)]]);
    expect(await client.zscore(`${P('d1')}presence:expiry`, 'd1')).toBe(String(now + 1_000));
    // The next beat finds it due within 1.25 intervals: moved, and its score kept in the record.
    const second = await beat(now + 800);
    expect(second.commands).toEqual(['set', 'zadd', 'hset']);
    expect(second.writes).toEqual([['lastHeartbeatAt', String(now + 800), 'expiresAt', String(now + 1_800), 'ix', String(now + 1_800)]]);
    expect(await client.zscore(`${P('d1')}presence:expiry`, 'd1')).toBe(String(now + 1_800));
    // Not known (after a write whose outcome is unknown): the record is read and checked first, and the entry moved.
    const third = await beat(now + 900, false);
    expect(third.commands).toEqual(['hmget', 'pexpire', 'zadd', 'hset']);
    expect(third.writes).toEqual([['lastHeartbeatAt', String(now + 900), 'expiresAt', String(now + 1_900), 'ix', String(now + 1_900)]]);
    expect(await client.zscore(`${P('d1')}presence:expiry`, 'd1')).toBe(String(now + 1_900));
    const view = (await s.getDevices(['d1'], now + 900))[0];
    expect(view).toMatchObject({ online: true, lastHeartbeatAt: now + 900, lastSeenAt: now + 900, interval: 400, expiresAt: now + 1_900 });
    expect(await client.get(`${P('d1')}presence:d1`)).toBe('s1');
    expect(await client.pttl(`${P('d1')}presence:d1`)).toBeGreaterThan(0);
  });

  it("a holder that knows its record: refused once another session took the device over, which keeps its presence key as it was", async () => {
    const s = store();
    const now = Date.now();
    await s.connect({ deviceId: 'd1', sessionId: 's1', userId: 'u1', instanceId: 'gw-1', now, interval: 10_000, ttl: 25_000 });
    await s.connect({ deviceId: 'd1', sessionId: 's2', userId: 'u1', instanceId: 'gw-2', now: now + 10, interval: 20_000, ttl: 50_000 });
    const key = `${P('d1')}presence:d1`;
    const before = await b.client.pttl(key);
    // The old holder still believes its record live (expiresAt now + 25000).
    const stale = { deviceId: 'd1', sessionId: 's1', instanceId: 'gw-1', interval: 10_000, ttl: 25_000, recordedInterval: 10_000 };
    expect(await s.heartbeat({ ...stale, now: now + 20, recordedExpiresAt: now + 25_000, recordedIndexAt: now + 25_000 })).toBe(false);
    expect(await b.client.get(key)).toBe('s2');
    // s2's TTL, not the heartbeat's 25 s: within the time this test took of what it was.
    const after = await b.client.pttl(key);
    expect(after).toBeGreaterThan(25_000);
    expect(after).toBeLessThanOrEqual(before + 20);
    expect((await s.getDevices(['d1'], now + 20))[0]).toMatchObject({ online: true, sessionId: 's2', instanceId: 'gw-2', expiresAt: now + 50_010 });
    // And the same without the knowledge (the record is read first): refused, nothing written.
    expect(await s.heartbeat({ ...stale, now: now + 30 })).toBe(false);
    expect(await b.client.get(key)).toBe('s2');
    expect((await s.getDevices(['d1'], now + 30))[0]).toMatchObject({ sessionId: 's2', lastHeartbeatAt: now + 10, expiresAt: now + 50_010 });
  });

  it('a holder that knows its record live: a presence key gone by Redis\'s clock is written again, as the record says the session lives', async () => {
    const s = store();
    const now = Date.now();
    await s.connect({ deviceId: 'd1', sessionId: 's1', userId: 'u1', instanceId: 'gw-1', now, interval: 10_000, ttl: 25_000 });
    const key = `${P('d1')}presence:d1`;
    // As if the key had run out on Redis's clock, the holder's clock behind it.
    await b.client.del(key);
    const known = { recordedInterval: 10_000, recordedExpiresAt: now + 25_000, recordedIndexAt: now + 25_000 };
    expect(await s.heartbeat({ deviceId: 'd1', sessionId: 's1', instanceId: 'gw-1', now: now + 10_000, interval: 10_000, ttl: 25_000, ...known })).toBe(true);
    expect(await b.client.get(key)).toBe('s1');
    expect(await b.client.pttl(key)).toBeGreaterThan(20_000);
    // Once the session has ended, the same knowledge does not bring it back.
    await s.disconnect([{ deviceId: 'd1', sessionId: 's1', userId: 'u1', instanceId: 'gw-1' }], now + 11_000, 'client_close');
    const after = { recordedInterval: 10_000, recordedExpiresAt: now + 35_000, recordedIndexAt: now + 25_000 };
    expect(await s.heartbeat({ deviceId: 'd1', sessionId: 's1', instanceId: 'gw-1', now: now + 12_000, interval: 10_000, ttl: 25_000, ...after })).toBe(false);
    expect(await b.client.exists(key)).toBe(0);
    expect((await s.getDevices(['d1'], now + 12_000))[0]).toMatchObject({ online: false, lastSeenAt: now + 11_000 });
  });

  (mode === '3-master Cluster' ? it.skip : it)(
    "writes interval, app state and network only where the record does not hold them as the caller says, and all of them when it does not know",
    async () => {
      const s = store();
      const client = b.client as Redis;
      const now = Date.now();
      await s.connect({ deviceId: 'd1', sessionId: 's1', userId: 'u1', instanceId: 'gw-1', now, interval: 400, ttl: 1_000, network: 'wifi:a' });
      const beat = async (at: number, u: Partial<HeartbeatUpdate>) => {
        const seen = await redisCommandsDuring(client, prefix, async () =>
          expect(await s.heartbeat({ deviceId: 'd1', sessionId: 's1', instanceId: 'gw-1', now: at, interval: 400, ttl: 1_000, ...u })).toBe(true),
        );
        const [write] = seen.filter(([name]) => name === 'hset').map((args) => args.slice(2));
        // The fields written besides the heartbeat's time, the expiry and the index score.
        return Object.fromEntries((write ?? []).flatMap((v, i, all) => (i % 2 === 0 && !['lastHeartbeatAt', 'expiresAt', 'ix'].includes(v) ? [[v, all[i + 1]]] : [])));
      };
      const known = { recordedInterval: 400, recordedNetwork: 'wifi:a' };
      // A new app state: only it.
      expect(await beat(now + 100, { ...known, network: 'wifi:a', appState: 'background' })).toEqual({ appState: 'background' });
      // Held already: nothing.
      expect(await beat(now + 200, { ...known, recordedAppState: 'background', network: 'wifi:a', appState: 'background' })).toEqual({});
      // A new interval and network: those two.
      expect(await beat(now + 300, { ...known, recordedAppState: 'background', interval: 800, network: 'cell:b', appState: 'background' })).toEqual({
        interval: '800',
        network: 'cell:b',
      });
      // Not known (after a write whose outcome is unknown): every field the heartbeat has, compared with nothing.
      expect(await beat(now + 400, { interval: 800, network: 'cell:b', appState: 'foreground' })).toEqual({
        interval: '800',
        appState: 'foreground',
        network: 'cell:b',
      });
      expect((await s.getDevices(['d1'], now + 400))[0]).toMatchObject({ interval: 800, appState: 'foreground', network: 'cell:b', lastHeartbeatAt: now + 400 });
    },
  );

  it('sends the heartbeats that arrive together in one EVALSHA per partition, each with its own answer', async () => {
    const s = store();
    const now = Date.now();
    const ids = ['batch-a', 'batch-b', 'batch-c', 'batch-d', 'batch-e', 'batch-f'];
    for (const id of ids) await s.connect({ deviceId: id, sessionId: `s-${id}`, userId: `u-${id}`, instanceId: 'gw-1', now, interval: 400, ttl: 1_000 });
    const beat = (deviceId: string, sessionId: string, at: number, extra: { appState?: 'background'; network?: string } = {}) =>
      s.heartbeat({ deviceId, sessionId, instanceId: 'gw-1', now: at, interval: 400, ttl: 1_000, ...extra });
    let answers: boolean[] = [];
    const seen = await redisCommandsDuring(b.client, prefix, async () => {
      answers = await Promise.all([
        beat('batch-a', 's-batch-a', now + 100),
        beat('batch-b', 's-batch-b', now + 110, { appState: 'background' }),
        beat('batch-c', 'not-the-session', now + 120), // another session's heartbeat: 0, the others go on
        beat('batch-d', 's-batch-d', now + 2_000), // past its expiresAt (now + 1000): expired
        beat('batch-e', 's-batch-e', now + 130, { network: 'wifi:batch' }),
        // In a later turn of the event loop, within the batch's window (2 ms), so it joins the same
        // call. (setImmediate, not a 1 ms timer: under CI's load both timers came due in one turn and
        // the window's could run first.)
        new Promise((resolve) => setImmediate(resolve)).then(() => beat('batch-f', 's-batch-f', now + 140)),
      ]);
    });
    expect(answers).toEqual([true, true, false, false, true, true]);
    const partitions = new Set(ids.map((id) => s.partitionOf(id))).size;
    // One EVALSHA per partition. An EVAL may follow one (NOSCRIPT: src/redis/lua-script.spec.ts
    // flushes the script cache of the Redis the suites share): a retry of the same call, not another.
    expect(seen.filter(([name]) => name === 'evalsha')).toHaveLength(partitions);
    // Each heartbeat in the batch wrote its own time and fields; the refused ones wrote nothing.
    const views = await s.getDevices(ids, now + 150);
    expect(views.map((v) => v?.lastHeartbeatAt)).toEqual([now + 100, now + 110, now, now, now + 130, now + 140]);
    expect(views[1]).toMatchObject({ online: true, appState: 'background', expiresAt: now + 1_110 });
    expect(views[4]).toMatchObject({ online: true, network: 'wifi:batch', expiresAt: now + 1_130 });
    expect(await b.client.pttl(`${P('batch-a')}presence:batch-a`)).toBeGreaterThan(0);
  });

  it('ends the sessions that close together in one EVALSHA per partition and reason, each caller with its own count and each device its own lastSeenAt', async () => {
    const s = store();
    const now = Date.now();
    const ids = ['end-a', 'end-b', 'end-c', 'end-d', 'end-e', 'end-f', 'end-g'];
    for (const id of ids) await s.connect({ deviceId: id, sessionId: `s-${id}`, userId: `u-${id}`, instanceId: 'gw-1', now, interval: 400, ttl: 10_000 });
    const end = (list: [string, string][], at: number, reason: 'client_close' | 'kicked') =>
      s.disconnect(list.map(([deviceId, sessionId]) => ({ deviceId, sessionId, userId: `u-${deviceId}`, instanceId: 'gw-1' })), at, reason);
    let counts: number[] = [];
    const seen = await redisCommandsDuring(b.client, prefix, async () => {
      counts = await Promise.all([
        end([['end-a', 's-end-a']], now + 100, 'client_close'),
        end([['end-b', 's-end-b']], now + 110, 'client_close'),
        end([['end-c', 'not-the-session']], now + 115, 'client_close'), // replaced meanwhile: 0, the others go on
        end([['end-d', 's-end-d']], now + 120, 'kicked'),
        end([['end-e', 's-end-e'], ['end-f', 's-end-f']], now + 130, 'client_close'),
        // A later turn of the event loop, within the window: the same call.
        new Promise((resolve) => setImmediate(resolve)).then(() => end([['end-g', 's-end-g']], now + 140, 'client_close')),
      ]);
    });
    expect(counts).toEqual([1, 1, 0, 1, 2, 1]);
    const closes = new Set(['end-a', 'end-b', 'end-c', 'end-e', 'end-f', 'end-g'].map((id) => s.partitionOf(id))).size;
    // DISCONNECT is the call keyed by the expiry index (with several partitions, user syncs follow on their own).
    const ends = (commands: string[][]) => commands.filter(([name, , , key]) => name === 'evalsha' && key!.endsWith('presence:expiry'));
    expect(ends(seen)).toHaveLength(closes + 1); // + the kick, its own reason
    const views = await s.getDevices(ids, now + 200);
    expect(views.map((v) => [v?.online, v?.lastSeenAt])).toEqual([
      [false, now + 100],
      [false, now + 110],
      [true, now],
      [false, now + 120],
      [false, now + 130],
      [false, now + 130],
      [false, now + 140],
    ]);
    const offline = (await logOf().read(undefined, 100, now + 200)).filter((e) => e.type === 'device.offline').map((e) => [e.data.deviceId, e.data.reason, e.data.lastSeenAt]);
    expect(offline.sort()).toEqual([
      ['end-a', 'client_close', now + 100],
      ['end-b', 'client_close', now + 110],
      ['end-d', 'kicked', now + 120],
      ['end-e', 'client_close', now + 130],
      ['end-f', 'client_close', now + 130],
      ['end-g', 'client_close', now + 140],
    ]);
  });

  it('ends a drain-sized list in calls of at most 128 sessions, every one of them ended', async () => {
    const s = store();
    const now = Date.now();
    const refs = Array.from({ length: 300 }, (_, i) => ({ deviceId: `drain-${i}`, sessionId: `s${i}`, userId: `u${i % 7}`, instanceId: 'gw-1' }));
    for (const r of refs) await s.connect({ ...r, now, interval: 400, ttl: 10_000 });
    let ended = 0;
    const seen = await redisCommandsDuring(b.client, prefix, async () => (ended = await s.disconnect(refs, now + 50, 'server_shutdown')));
    expect(ended).toBe(300);
    const calls = seen.filter(([name, , , key]) => name === 'evalsha' && key!.endsWith('presence:expiry'));
    const perPartition = [...new Set(refs.map((r) => s.partitionOf(r.deviceId)))].map((p) => refs.filter((r) => s.partitionOf(r.deviceId) === p).length);
    expect(calls).toHaveLength(perPartition.reduce((n, k) => n + Math.ceil(k / 128), 0));
    expect((await s.getDevices(refs.map((r) => r.deviceId), now + 60)).every((v) => v?.online === false && v.lastSeenAt === now + 50)).toBe(true);
  });

  it('applies the heartbeats queued before a claim first (the claim cannot take a session a queued heartbeat extends)', async () => {
    const s = store();
    const now = Date.now();
    const live = new Map([['gw-1', 0]]);
    await s.connect({ deviceId: 'late-beat', sessionId: 'slb', userId: 'ulb', instanceId: 'gw-1', now, interval: 400, ttl: 1_000 });
    // The heartbeat is queued (not sent yet) when the sweep's claim at expiresAt is made.
    const beating = s.heartbeat({ deviceId: 'late-beat', sessionId: 'slb', instanceId: 'gw-1', now: now + 999, interval: 400, ttl: 1_000 });
    const claimed = await s.claimExpired(s.partitionOf('late-beat'), now + 1_000, 100, live);
    expect(await beating).toBe(true);
    expect(claimed).toEqual([]);
    expect((await s.getDevices(['late-beat'], now + 1_500))[0]).toMatchObject({ online: true, expiresAt: now + 1_999 });
  });

  it('rejects every heartbeat of a batch Redis did not take, each as store unavailable', async () => {
    const down = new Redis({ port: 1, host: '127.0.0.1', lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    const s = new RedisPresenceStore(down, b.layout, RETENTION);
    const now = Date.now();
    const results = await Promise.allSettled(
      ['x1', 'x2', 'x3'].map((id) => s.heartbeat({ deviceId: id, sessionId: 's', instanceId: 'gw-1', now, interval: 400, ttl: 1_000 })),
    );
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    for (const r of results) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(StoreUnavailableError);
    down.disconnect();
  });

  it("applies a session's heartbeat still queued for its batch before its end", async () => {
    const s = store();
    const now = Date.now();
    const ref = { deviceId: 'last-beat', sessionId: 'slast', userId: 'ulast', instanceId: 'gw-1' };
    await s.connect({ ...ref, now, interval: 400, ttl: 10_000 });
    // The heartbeat waits for its batch (4 ms), the end for its own (2 ms): the end's sends the heartbeat first.
    const beating = s.heartbeat({ deviceId: ref.deviceId, sessionId: ref.sessionId, instanceId: 'gw-1', now: now + 5, interval: 400, ttl: 10_000 });
    expect(await s.disconnect([ref], now + 6, 'client_close')).toBe(1);
    expect(await beating).toBe(true);
  });

  it('sends session ends and their user syncs on the heartbeat connection, off the one handshakes use', async () => {
    const now = Date.now();
    const devices = ['ends-a', 'ends-b', 'ends-c'];
    const refOf = (id: string) => ({ deviceId: id, sessionId: `s-${id}`, userId: 'ends-user', instanceId: 'gw-1' });
    await Promise.all(devices.map((id) => store().connect({ ...refOf(id), now, interval: 400, ttl: 10_000 })));
    // The commands' connection refuses everything: only `beats` can carry the ends and the user's change.
    const down = new Redis({ port: 1, host: '127.0.0.1', lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    try {
      const s = store({ beats: b.client }, down);
      expect(await Promise.all(devices.map((id) => s.disconnect([refOf(id)], now + 10, 'client_close')))).toEqual([1, 1, 1]);
    } finally {
      down.disconnect();
    }
    expect((await store().getDevices(devices, now + 20)).map((d) => d?.online)).toEqual([false, false, false]);
    const users = (await logOf().read(undefined, 100, now)).filter((e) => e.type.startsWith('user.') && e.data.userId === 'ends-user').map((e) => e.type);
    expect(users).toEqual(['user.online', 'user.offline']);
  });

  it('ends a device that went silent at its expiresAt, not before, when its index entry came due earlier', async () => {
    const s = store();
    const now = Date.now();
    const live = new Map([['gw-1', 0]]);
    await s.connect({ deviceId: 'quiet', sessionId: 'sq', userId: 'uq', instanceId: 'gw-1', now, interval: 400, ttl: 1_000 });
    // One beat that leaves the index entry at now + 1000; the session now runs to now + 1400.
    expect(await s.heartbeat({ deviceId: 'quiet', sessionId: 'sq', instanceId: 'gw-1', now: now + 400, interval: 400, ttl: 1_000 })).toBe(true);
    const p = s.partitionOf('quiet');
    expect(await s.claimExpired(p, now + 1_000, 100, live)).toEqual([]); // looked at, not over: re-scored
    expect((await s.getDevices(['quiet'], now + 1_399))[0]).toMatchObject({ online: true });
    expect(await s.claimExpired(p, now + 1_399, 100, live)).toEqual([]);
    expect((await s.claimExpired(p, now + 1_400, 100, live)).map((r) => r.deviceId)).toEqual(['quiet']);
    // A device that kept beating is never claimed, whatever its entry's score.
    await s.connect({ deviceId: 'busy', sessionId: 'sb', userId: 'ub', instanceId: 'gw-1', now, interval: 400, ttl: 1_000 });
    for (let t = now + 400; t <= now + 4_000; t += 400) {
      expect(await s.heartbeat({ deviceId: 'busy', sessionId: 'sb', instanceId: 'gw-1', now: t, interval: 400, ttl: 1_000 })).toBe(true);
      expect(await s.claimExpired(s.partitionOf('busy'), t, 100, live)).toEqual([]);
    }
  });
});

describe('sweeping over partition leases (real Redis, 1024 partitions)', () => {
  let redis: Redis;
  const prefix = uniquePrefix('presence-lease');
  const LEASE_MS = 3_000; // long enough that a loaded machine does not outlast a lease between refresh and sweep
  const layout = new KeyLayout(prefix, true);
  beforeAll(() => {
    redis = new Redis(testRedisUrl(), { enableAutoPipelining: true });
  });
  afterAll(async () => {
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  const instance = (id: string) => {
    const clock = new SystemClock();
    const config = loadConfig({ SWEEP_INTERVAL_MS: '100', INSTANCE_ID: id });
    const store = new RedisPresenceStore(redis, layout, RETENTION);
    const leases = new RedisPartitionLeases(redis, layout, id, clock, LEASE_MS);
    const closed: SessionRef[] = [];
    const channel = { close: (refs: SessionRef[]) => closed.push(...refs) } as unknown as DeviceChannel;
    const sweeper = new SessionSweeper(
      store,
      channel,
      clock,
      config,
      new MetricsService(),
      new IntervalRegistry(),
      new LoadMonitor(config, clock),
      { endDue: () => 0 } as unknown as TokenExpiry,
      leases,
      new DuePartitions(redis, layout),
    );
    return { store, leases, sweeper, closed };
  };
  const expiredSessions = async (store: RedisPresenceStore, tag: string, n: number) => {
    const at = Date.now() - 10_000;
    const ids = Array.from({ length: n }, (_, i) => `${tag}-${i}`);
    await Promise.all(ids.map((id) => store.connect({ deviceId: id, sessionId: `s-${id}`, userId: `u-${id}`, instanceId: 'gw-gone', now: at, interval: 400, ttl: 1_000 })));
    return ids;
  };

  it("sweeps each partition by its lease holder only, and a dead holder's partitions by the other once its leases lapse", async () => {
    const a = instance('gw-a');
    const b = instance('gw-b');
    for (let round = 0; round < 3; round++) for (const x of [a, b]) await x.leases.refresh();
    const owner = new Map<number, string>();
    for (const [x, id] of [[a, 'a'], [b, 'b']] as const) for (const p of x.leases.owned()) owner.set(p, id);
    expect(owner.size).toBe(layout.partitions); // every partition held, each by one
    expect(a.leases.owned().length + b.leases.owned().length).toBe(layout.partitions);

    const first = await expiredSessions(a.store, 'one', 400);
    expect(await a.sweeper.sweep()).toBe(a.closed.length);
    expect(await b.sweeper.sweep()).toBe(b.closed.length);
    expect(a.closed.length + b.closed.length).toBe(first.length);
    for (const r of a.closed) expect(owner.get(layout.partitionOf(r.deviceId))).toBe('a');
    for (const r of b.closed) expect(owner.get(layout.partitionOf(r.deviceId))).toBe('b');

    // b dies (stops renewing): its partitions go unswept until its leases lapse, then a takes them.
    const second = await expiredSessions(a.store, 'two', 400);
    const ofB = second.filter((id) => owner.get(layout.partitionOf(id)) === 'b');
    expect(ofB.length).toBeGreaterThan(100);
    a.closed.length = 0;
    await b.leases.refresh(); // its last renewal
    await a.leases.refresh();
    await a.sweeper.sweep();
    expect(a.closed.map((r) => r.deviceId).sort()).toEqual(second.filter((id) => owner.get(layout.partitionOf(id)) === 'a').sort());
    await new Promise((r) => setTimeout(r, LEASE_MS + 50));
    await a.leases.refresh();
    await a.leases.refresh();
    expect(a.leases.owned()).toHaveLength(layout.partitions);
    a.closed.length = 0;
    await a.sweeper.sweep();
    expect(a.closed.map((r) => r.deviceId).sort()).toEqual(ofB.sort());
  });
});
