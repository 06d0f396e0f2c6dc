import Redis from 'ioredis';
import { FakeClock } from '../../test/support/fake-clock';
import { deleteKeys, keysWithoutTtl, testRedisUrl, uniquePrefix } from '../../test/support/redis';
import { EventLog } from '../events/event-log';
import { EventEnvelope } from '../events/event.types';
import { MemoryEventLog } from '../events/memory-event-log';
import { RedisEventLog } from '../events/redis-event-log';
import { DEVICE_SAMPLE_PERIOD_MS, NETWORK_RETENTION_MS } from './network-intervals';
import { MemoryPresenceStore } from './memory-presence.store';
import { PresenceStore } from './presence.store';
import { SessionStart } from './presence.types';
import { RedisPresenceStore } from './redis-presence.store';

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
  eventLog: (store: PresenceStore) => EventLog;
}

/** The same behaviour, case by case, for both implementations. */
function presenceStoreCases({ make: makeStore, unbounded, eventLog }: Harness) {
  let store: PresenceStore;
  let clock: FakeClock;
  /** Events recorded after the cursor `after`, as [type, data] (everything retained when absent). */
  let seen: string | undefined;
  const allEvents = async (): Promise<EventEnvelope[]> => eventLog(store).read(undefined, 1_000, clock.now());
  const newEvents = async (): Promise<[string, Record<string, unknown>][]> => {
    const events = await eventLog(store).read(seen, 1_000, clock.now());
    if (events.length) seen = events[events.length - 1]!.id;
    return events.map((e) => [e.type, e.data]);
  };
  const start = (deviceId: string, sessionId: string, extra: Partial<SessionStart> = {}): SessionStart => ({
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
      expect(await store.claimExpired('gw-1', clock.now(), 100)).toEqual([]);
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
    expect(await store.claimExpired('gw-1', clock.now() + TTL * 10, 100)).toEqual([]);
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
    expect(await store.claimExpired('gw-1', clock.now(), 1)).toEqual([ref('a', 'sa')]);
    expect(await store.claimExpired('gw-1', clock.now(), 10)).toEqual([ref('b', 'sb', 'u2')]);
    expect(await store.claimExpired('gw-1', clock.now(), 10)).toEqual([]);
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

  it('leaves the sessions of a live instance to that instance, and hands those of a dead one to anybody', async () => {
    await store.touchInstance({ instanceId: 'gw-1', online: 1, lastSeenAt: clock.now() }, 10 * TTL);
    await store.connect(start('mine', 's-mine')); // held by gw-1, alive
    await store.connect(start('orphan', 's-orphan', { instanceId: 'gw-dead' })); // its instance never reports
    clock.advance(TTL);
    expect(await store.claimExpired('gw-2', clock.now(), 10)).toEqual([]); // another instance's sessions are not gw-2's
    expect(await store.orphanedOwners(clock.now())).toEqual(['gw-dead']);
    expect(await store.claimExpired('gw-dead', clock.now(), 10)).toEqual([{ ...ref('orphan', 's-orphan'), instanceId: 'gw-dead' }]);
    expect(await store.orphanedOwners(clock.now())).toEqual([]); // nothing left: the dead instance is gone for good
    expect(await store.claimExpired('gw-1', clock.now(), 10)).toEqual([ref('mine', 's-mine')]);
  });

  it('moves a session to the instance that took the device over', async () => {
    await store.connect(start('d1', 's1'));
    await store.connect(start('d1', 's2', { instanceId: 'gw-2' }));
    clock.advance(TTL);
    expect(await store.claimExpired('gw-1', clock.now(), 10)).toEqual([]);
    expect(await store.claimExpired('gw-2', clock.now(), 10)).toEqual([{ ...ref('d1', 's2'), instanceId: 'gw-2' }]);
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
    expect(await store.claimExpired('gw-1', clock.now(), 10)).toHaveLength(1);
    clock.advance(Math.max(RETENTION, NETWORK_RETENTION_MS));
    await store.claimExpired('gw-1', clock.now(), 10);
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
      expect(await newEvents()).toEqual([on('d1', 's1', 1), ['user.online', { userId: 'u1' }], on('d2', 's2', 1, { platform: undefined, network: 'wifi:home' })]);
      clock.advance(10);
      expect(await store.disconnect([ref('d1', 's1')], clock.now(), 'kicked')).toBe(1);
      expect(await newEvents()).toEqual([off('d1', 's1', 'kicked', clock.now(), 2)]);
      expect(await store.disconnect([ref('d2', 's2')], clock.now(), 'server_shutdown')).toBe(1);
      expect(await newEvents()).toEqual([off('d2', 's2', 'server_shutdown', clock.now(), 2), ['user.offline', { userId: 'u1' }]]);
      await store.connect(start('d1', 's3'));
      expect(await newEvents()).toEqual([on('d1', 's3', 3), ['user.online', { userId: 'u1' }]]);
      const [d1, d2] = await store.getDevices(['d1', 'd2'], clock.now());
      expect([d1?.seq, d2?.seq]).toEqual([3, 2]);
    });

    it('on a takeover records the old offline (replaced) before the new online; the old session ending later records nothing', async () => {
      await store.connect(start('d1', 's1'));
      await newEvents();
      clock.advance(5);
      await store.connect(start('d1', 's2', { instanceId: 'gw-2' }));
      expect(await newEvents()).toEqual([off('d1', 's1', 'replaced', clock.now(), 2), on('d1', 's2', 3, { instanceId: 'gw-2' })]);
      expect(await store.disconnect([ref('d1', 's1')], clock.now(), 'client_close')).toBe(0);
      expect(await store.claimExpired('gw-1', clock.now() + 10 * TTL, 10)).toEqual([]);
      // The same session recorded again (a retried call) is no change either.
      expect(await store.connect(start('d1', 's2', { instanceId: 'gw-2' }))).toMatchObject({ sessionId: 's2' });
      // A heartbeat is never an event.
      expect(await store.heartbeat({ deviceId: 'd1', sessionId: 's2', instanceId: 'gw-2', now: clock.now(), interval: 400, ttl: TTL })).toBe(true);
      expect(await newEvents()).toEqual([]);
      expect((await store.getDevices(['d1'], clock.now()))[0]?.seq).toBe(3);
    });

    it('says heartbeat_timeout for a sweep of a live instance, instance_lost for one that stopped reporting, with the last heartbeat as lastSeenAt', async () => {
      await store.touchInstance({ instanceId: 'gw-1', online: 1, lastSeenAt: clock.now() }, 100 * TTL);
      await store.connect(start('mine', 's-mine'));
      await store.connect(start('orphan', 's-orphan', { instanceId: 'gw-dead', userId: 'u2' }));
      const connectedAt = clock.now();
      await newEvents();
      clock.advance(TTL);
      expect(await store.claimExpired('gw-dead', clock.now(), 10)).toHaveLength(1);
      expect(await store.claimExpired('gw-1', clock.now(), 10)).toHaveLength(1);
      expect(await newEvents()).toEqual([
        off('orphan', 's-orphan', 'instance_lost', connectedAt, 2, { instanceId: 'gw-dead', userId: 'u2' }),
        ['user.offline', { userId: 'u2' }],
        off('mine', 's-mine', 'heartbeat_timeout', connectedAt, 2),
        ['user.offline', { userId: 'u1' }],
      ]);
    });

    it('says heartbeat_timeout when an instance sweeps its own sessions, even after its liveness record lapsed (a stall)', async () => {
      await store.connect(start('mine', 's-mine')); // gw-1 never reported itself (or its record ran out)
      await store.connect(start('theirs', 's-theirs', { userId: 'u2' }));
      const connectedAt = clock.now();
      await newEvents();
      clock.advance(TTL);
      expect(await store.claimExpired('gw-1', clock.now(), 1, 'gw-1')).toHaveLength(1);
      expect(await store.claimExpired('gw-1', clock.now(), 1, 'gw-2')).toHaveLength(1); // another instance: the owner looks dead
      expect(await newEvents()).toEqual([
        off('mine', 's-mine', 'heartbeat_timeout', connectedAt, 2),
        ['user.offline', { userId: 'u1' }],
        off('theirs', 's-theirs', 'instance_lost', connectedAt, 2, { userId: 'u2' }),
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
      expect(await newEvents()).toEqual([
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
      expect(await newEvents()).toEqual([
        off('d1', 's1', 'replaced', clock.now(), 2),
        ['user.offline', { userId: 'u1' }],
        on('d1', 's2', 3, { userId: 'u9' }),
        ['user.online', { userId: 'u9' }],
      ]);
    });

    it('gives unique, increasing ids even when the clock goes back, reads after a cursor, and keeps events EVENT_RETENTION', async () => {
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
      expect(types.indexOf('user.online')).toBe(1); // right after the first device's online
      expect(types[types.length - 1]).toBe('user.offline'); // after the last device's offline
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
    const release = () => store.releaseHeldOfflines(clock.now(), 100);
    const seqOf = async (id: string) => (await store.getDevices([id], clock.now()))[0]?.seq;

    beforeEach(() => {
      store = makeStore({ eventGraceMs: GRACE });
    });

    it('holds a client_close offline for the grace (presence is offline at once), then records it with its original data and time', async () => {
      await store.connect(start('d1', 's1'));
      expect(await newEvents()).toEqual([on('d1', 's1', 1), userOn()]);
      clock.advance(50);
      const endedAt = clock.now();
      expect(await store.disconnect([ref('d1', 's1')], clock.now(), 'client_close')).toBe(1);
      expect(await newEvents()).toEqual([]);
      // Offline at once; the seq shown is that of its last recorded event until the offline is.
      expect((await store.getDevices(['d1'], clock.now()))[0]).toMatchObject({ online: false, lastSeenAt: endedAt, seq: 1 });
      expect(await store.countOnline(clock.now())).toBe(0);
      clock.advance(GRACE - 1);
      expect(await release()).toBe(0);
      expect(await newEvents()).toEqual([]);
      clock.advance(1);
      expect(await release()).toBe(1);
      expect(await newEvents()).toEqual([off('d1', 's1', 'client_close', endedAt, 2), userOff()]);
      expect(await seqOf('d1')).toBe(2);
      // Its place in the log is now; its timestamp is when the session ended.
      expect((await allEvents()).slice(-2).map((e) => e.timestamp)).toEqual([endedAt, endedAt]);
      expect(await release()).toBe(0);
      expect(await newEvents()).toEqual([]);
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
      expect(await newEvents()).toEqual([]);
      // The next offline carries the seq after the gap, and the session that was live.
      await store.disconnect([{ ...ref('d1', 's2'), instanceId: 'gw-2' }], clock.now(), 'server_shutdown');
      const endedAt = clock.now();
      clock.advance(GRACE);
      expect(await release()).toBe(1);
      expect(await newEvents()).toEqual([off('d1', 's2', 'server_shutdown', endedAt, 4, { instanceId: 'gw-2' }), userOff()]);
      expect(await seqOf('d1')).toBe(4);
    });

    it('a reconnect once the grace ended, before any release, records the held offline first, then the online', async () => {
      await store.connect(start('d1', 's1'));
      await newEvents();
      const endedAt = clock.now();
      await store.disconnect([ref('d1', 's1')], clock.now(), 'client_close');
      clock.advance(GRACE);
      await store.connect(start('d1', 's2'));
      expect(await newEvents()).toEqual([off('d1', 's1', 'client_close', endedAt, 2), userOff(), on('d1', 's2', 3), userOn()]);
      expect(await release()).toBe(0);
      expect(await newEvents()).toEqual([]);
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
      expect(await store.claimExpired('gw-dead', clock.now(), 10)).toHaveLength(1);
      expect(await store.claimExpired('gw-1', clock.now(), 10)).toHaveLength(1);
      expect(await online('mine')).toBe(false);
      expect(await newEvents()).toEqual([]);
      clock.advance(GRACE - 110 - 1);
      expect(await release()).toBe(0);
      clock.advance(1); // orphan's expiry + grace
      expect(await release()).toBe(1);
      expect(await newEvents()).toEqual([off('orphan', 's-orphan', 'instance_lost', orphanAt, 2, { instanceId: 'gw-dead', userId: 'u2' }), userOff('u2')]);
      clock.advance(10);
      expect(await release()).toBe(1);
      expect(await newEvents()).toEqual([off('mine', 's-mine', 'heartbeat_timeout', mineAt, 2), userOff()]);
      // A sweep later than expiry + grace has nothing left to wait for.
      await store.connect(start('late', 's-late'));
      const lateAt = clock.now();
      await newEvents();
      clock.advance(TTL + GRACE);
      expect(await store.claimExpired('gw-1', clock.now(), 10)).toHaveLength(1);
      expect(await newEvents()).toEqual([off('late', 's-late', 'heartbeat_timeout', lateAt, 2), userOff()]);
    });

    it('a run-out session found by a reconnect within its expiry + grace is a flap; after that its offline and user.offline come first', async () => {
      await store.touchInstance({ instanceId: 'gw-1', online: 1, lastSeenAt: clock.now() }, 100 * GRACE);
      await store.connect(start('a', 'sa'));
      await store.connect(start('b', 'sb', { userId: 'u2' }));
      const connectedAt = clock.now();
      await newEvents();
      clock.advance(TTL + GRACE - 1);
      await store.connect(start('a', 'sa2'));
      expect(await newEvents()).toEqual([]);
      expect(await seqOf('a')).toBe(1);
      clock.advance(1);
      await store.connect(start('b', 'sb2', { userId: 'u2' }));
      expect(await newEvents()).toEqual([
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
        expect(await newEvents()).toEqual([off('d1', 's1', 'replaced', clock.now(), 2), on('d1', 's2', 3, { instanceId: 'gw-2' })]);
      } else {
        await store.disconnect([ref('d1', 's1')], clock.now(), reason);
        expect(await newEvents()).toEqual([off('d1', 's1', reason, clock.now(), 2), userOff()]);
      }
    });

    it('device A held, device B of the same user comes online, A released: no user.* in between', async () => {
      await store.connect(start('a', 'sa'));
      await newEvents();
      const endedAt = clock.now();
      await store.disconnect([ref('a', 'sa')], clock.now(), 'client_close');
      clock.advance(100);
      await store.connect(start('b', 'sb'));
      expect(await newEvents()).toEqual([on('b', 'sb', 1)]); // receivers still know the user online (a)
      clock.advance(GRACE);
      await release();
      expect(await newEvents()).toEqual([off('a', 'sa', 'client_close', endedAt, 2)]); // b is online
      await store.disconnect([ref('b', 'sb')], clock.now(), 'client_close');
      clock.advance(GRACE);
      await release();
      expect(await newEvents()).toEqual([off('b', 'sb', 'client_close', clock.now() - GRACE, 2), userOff()]);
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
      expect(await newEvents()).toEqual([off('b', 'sb', 'client_close', endedAt, 2)]);
      // Both held, released in one pass and in two.
      await store.connect(start('b', 'sb2'));
      expect(await newEvents()).toEqual([on('b', 'sb2', 3)]);
      await store.disconnect([ref('a', 'sa2')], clock.now(), 'heartbeat_timeout');
      clock.advance(1);
      await store.disconnect([ref('b', 'sb2')], clock.now(), 'client_close');
      clock.advance(GRACE);
      expect(await store.releaseHeldOfflines(clock.now(), 1)).toBe(1);
      expect(await newEvents()).toEqual([off('a', 'sa2', 'heartbeat_timeout', clock.now() - GRACE - 1, 4)]);
      expect(await release()).toBe(1);
      expect(await newEvents()).toEqual([off('b', 'sb2', 'client_close', clock.now() - GRACE, 4), userOff()]);
    });

    it('a device moving to another user within the grace records its held offline at once, with the old user going offline', async () => {
      await store.connect(start('d1', 's1'));
      await newEvents();
      const endedAt = clock.now();
      await store.disconnect([ref('d1', 's1')], clock.now(), 'client_close');
      clock.advance(10);
      await store.connect(start('d1', 's2', { userId: 'u9' }));
      expect(await newEvents()).toEqual([off('d1', 's1', 'client_close', endedAt, 2), userOff(), on('d1', 's2', 3, { userId: 'u9' }), userOn('u9')]);
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
      await store.claimExpired('gw-1', clock.now(), 10);
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
  });
});

describe('RedisPresenceStore (real Redis)', () => {
  const redis = new Redis(testRedisUrl(), { enableAutoPipelining: true });
  const prefix = uniquePrefix('presence');
  afterEach(() => deleteKeys(redis, prefix));
  afterAll(() => redis.quit());

  presenceStoreCases({
    make: (o) => new RedisPresenceStore(redis, prefix, RETENTION, { eventRetentionMs: EVENT_RETENTION, eventGraceMs: o?.eventGraceMs }),
    unbounded: () => keysWithoutTtl(redis, prefix, ['networks']),
    eventLog: () => new RedisEventLog(redis, prefix, EVENT_RETENTION),
  });

  it('keeps the documented key layout with a real TTL on the presence key', async () => {
    const store = new RedisPresenceStore(redis, prefix, RETENTION);
    const now = Date.now();
    await store.connect({ deviceId: 'd1', sessionId: 's1', userId: 'u1', instanceId: 'gw-1', now, interval: 4_000, ttl: 10_000 });
    expect(await redis.get(`${prefix}presence:d1`)).toBe('s1');
    const pttl = await redis.pttl(`${prefix}presence:d1`);
    expect(pttl).toBeGreaterThan(9_000);
    expect(pttl).toBeLessThanOrEqual(10_000);
    expect(Number(await redis.zscore(`${prefix}presence:expiry:gw-1`, 'd1'))).toBe(now + 10_000);
    expect(await redis.sismember(`${prefix}instances`, 'gw-1')).toBe(1);
    expect(await redis.zrange(`${prefix}user:u1:devices`, '0', '-1')).toEqual(['d1']);
    await store.heartbeat({ deviceId: 'd1', sessionId: 's1', instanceId: 'gw-1', now, interval: 8_000, ttl: 20_000 });
    expect(await redis.pttl(`${prefix}presence:d1`)).toBeGreaterThan(19_000);
    await store.disconnect([{ deviceId: 'd1', sessionId: 's1', userId: 'u1', instanceId: 'gw-1' }], now, 'client_close');
    expect(await redis.exists(`${prefix}presence:d1`)).toBe(0);
    expect(await redis.pttl(`${prefix}device:d1`)).toBeGreaterThan(RETENTION - 60_000);
  });

  it('brings the presence key back when a heartbeat within the grace finds it already expired in Redis', async () => {
    const store = new RedisPresenceStore(redis, prefix, RETENTION);
    const now = Date.now();
    await store.connect({ deviceId: 'd1', sessionId: 's1', userId: 'u1', instanceId: 'gw-1', now, interval: 400, ttl: 50 });
    for (let i = 0; i < 200 && (await redis.exists(`${prefix}presence:d1`)) === 1; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await redis.exists(`${prefix}presence:d1`)).toBe(0);
    // The instance was behind: it handles the beat as of `now + 40`, within its grace of the expiry.
    expect(await store.heartbeat({ deviceId: 'd1', sessionId: 's1', instanceId: 'gw-1', now: now + 40, interval: 400, ttl: 10_000, grace: 1_000 })).toBe(true);
    expect(await redis.get(`${prefix}presence:d1`)).toBe('s1');
    expect(await redis.pttl(`${prefix}presence:d1`)).toBeGreaterThan(9_000);
  });

  it('hands each expired session to exactly one of several concurrent sweepers', async () => {
    // Three instances sweeping the sessions of a fourth that stopped reporting itself alive.
    const stores = [0, 1, 2].map(() => new RedisPresenceStore(redis, prefix, RETENTION));
    const now = 1_000_000;
    for (let i = 0; i < 300; i++) {
      await stores[0]!.connect({ deviceId: `d${i}`, sessionId: `s${i}`, userId: 'u', instanceId: 'gw', now, interval: 400, ttl: 1_000 });
    }
    const claimed = await Promise.all(stores.flatMap((s) => [s.claimExpired('gw', now + 1_000, 50), s.claimExpired('gw', now + 1_000, 200)]));
    const ids = claimed.flat().map((r) => r.deviceId);
    expect(ids).toHaveLength(300);
    expect(new Set(ids).size).toBe(300);
  });

  it('lands each event in the same atomic step as its change (snapshots by MULTI on another connection)', async () => {
    const store = new RedisPresenceStore(redis, prefix, RETENTION, { eventRetentionMs: EVENT_RETENTION });
    const reader = redis.duplicate();
    const now = Date.now();
    let writing = true;
    const writer = (async () => {
      for (let i = 0; i < 150; i++) {
        await store.connect({ deviceId: 'd1', sessionId: `s${i}`, userId: 'u1', instanceId: `gw-${i % 2}`, now, interval: 400, ttl: 10_000 });
        if (i % 3 === 0) await store.disconnect([{ deviceId: 'd1', sessionId: `s${i}`, userId: 'u1', instanceId: `gw-${i % 2}` }], now, 'client_close');
      }
    })().finally(() => (writing = false));
    let snapshots = 0;
    while (writing || snapshots === 0) {
      const replies = await reader.multi().hmget(`${prefix}device:d1`, 'sessionId', 'seq').xrevrange(`${prefix}events`, '+', '-', 'COUNT', 4).exec();
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
    await reader.quit();
    expect(snapshots).toBeGreaterThan(0);
  });

  it('records each transition once when two instances race (separate connections)', async () => {
    const connections = [redis.duplicate(), redis.duplicate()];
    const [a, b] = connections.map((c) => new RedisPresenceStore(c, prefix, RETENTION, { eventRetentionMs: EVENT_RETENTION })) as [RedisPresenceStore, RedisPresenceStore];
    const log = new RedisEventLog(redis, prefix, EVENT_RETENTION);
    const now = Date.now();
    const start = (deviceId: string, sessionId: string, instanceId: string) => ({ deviceId, sessionId, userId: 'u1', instanceId, now, interval: 400, ttl: 10_000 });
    for (let round = 0; round < 20; round++) {
      // Two devices of one user coming online on two instances, and one device reconnecting on both.
      await Promise.all([a.connect(start(`x${round}`, `xa${round}`, 'gw-a')), b.connect(start(`y${round}`, `yb${round}`, 'gw-b'))]);
      await Promise.all([a.connect(start(`x${round}`, `xa2-${round}`, 'gw-a')), b.connect(start(`x${round}`, `xb2-${round}`, 'gw-b'))]);
      const [x] = await a.getDevices([`x${round}`], now);
      await Promise.all([
        a.disconnect([{ deviceId: `x${round}`, sessionId: x!.sessionId!, userId: 'u1', instanceId: x!.instanceId! }], now, 'client_close'),
        b.disconnect([{ deviceId: `y${round}`, sessionId: `yb${round}`, userId: 'u1', instanceId: 'gw-b' }], now, 'client_close'),
      ]);
    }
    const events = await log.read(undefined, 1_000, now);
    await Promise.all(connections.map((c) => c.quit()));
    expect(events.filter((e) => e.type === 'user.online')).toHaveLength(20);
    expect(events.filter((e) => e.type === 'user.offline')).toHaveLength(20);
    // Per device, seq counts up by one in log order, across both instances.
    const seqs = new Map<string, number[]>();
    for (const e of events.filter((e) => e.type.startsWith('device.'))) {
      const id = e.data.deviceId as string;
      seqs.set(id, [...(seqs.get(id) ?? []), e.data.seq as number]);
    }
    for (const [id, list] of seqs) expect([id, list]).toEqual([id, list.map((_, i) => i + 1)]);
    expect(seqs.get('x0')).toHaveLength(6); // online, replaced + online, replaced + online, offline
  });

  it('holds an offline in the documented keys (each with a TTL), taken and recorded in one step', async () => {
    const store = new RedisPresenceStore(redis, prefix, RETENTION, { eventGraceMs: 5_000 });
    const now = Date.now();
    await store.connect({ deviceId: 'd1', sessionId: 's1', userId: 'u1', instanceId: 'gw-1', now, interval: 4_000, ttl: 10_000 });
    await store.disconnect([{ deviceId: 'd1', sessionId: 's1', userId: 'u1', instanceId: 'gw-1' }], now + 10, 'client_close');
    expect(await redis.exists(`${prefix}presence:d1`)).toBe(0); // presence is not delayed
    const held = await redis.hgetall(`${prefix}heldoff:d1`);
    expect(held).toMatchObject({ userId: 'u1', due: String(now + 5_010), ts: String(now + 10) });
    expect(JSON.parse(held.data!)).toMatchObject({ deviceId: 'd1', reason: 'client_close', seq: 2, lastSeenAt: now + 10 });
    expect(await redis.pttl(`${prefix}heldoff:d1`)).toBeGreaterThan(RETENTION - 60_000);
    expect(Number(await redis.zscore(`${prefix}heldoff:due`, 'd1'))).toBe(now + 5_010);
    expect(await redis.smembers(`${prefix}user:u1:held`)).toEqual(['d1']);
    expect(await redis.pttl(`${prefix}user:u1:held`)).toBeGreaterThan(RETENTION - 60_000);
    expect(await redis.hmget(`${prefix}device:d1`, 'seq', 'eventSeq')).toEqual(['2', '1']);
    expect(await store.releaseHeldOfflines(now + 5_010, 10)).toBe(1);
    expect(await redis.hget(`${prefix}device:d1`, 'eventSeq')).toBe('2');
    expect(await redis.exists(`${prefix}heldoff:d1`, `${prefix}heldoff:due`, `${prefix}user:u1:held`)).toBe(0);
  });

  it('records each held offline once when several instances release at once (separate connections)', async () => {
    const connections = [0, 1, 2].map(() => redis.duplicate());
    const stores = connections.map((c) => new RedisPresenceStore(c, prefix, RETENTION, { eventRetentionMs: EVENT_RETENTION, eventGraceMs: 1_000 }));
    const now = Date.now();
    const refs = [];
    for (let i = 0; i < 300; i++) {
      const s = { deviceId: `d${i}`, sessionId: `s${i}`, userId: `u${i % 30}`, instanceId: 'gw-dead' };
      await stores[0]!.connect({ ...s, now, interval: 400, ttl: 10_000 });
      refs.push(s);
    }
    await stores[0]!.disconnect(refs, now, 'server_shutdown');
    const released = await Promise.all(stores.flatMap((s) => [s.releaseHeldOfflines(now + 1_000, 50), s.releaseHeldOfflines(now + 1_000, 200)]));
    const more = await stores[1]!.releaseHeldOfflines(now + 1_000, 1_000);
    await Promise.all(connections.map((c) => c.quit()));
    expect(released.reduce((a, b) => a + b, 0) + more).toBe(300);
    const events = (await new RedisEventLog(redis, prefix, EVENT_RETENTION).read(undefined, 1_000, now)).filter((e) => e.type.endsWith('offline'));
    expect(events.filter((e) => e.type === 'device.offline').map((e) => e.data.deviceId as string).sort()).toEqual(refs.map((r) => r.deviceId).sort());
    expect(new Set(events.filter((e) => e.type === 'user.offline').map((e) => e.data.userId)).size).toBe(30);
    expect(events.filter((e) => e.type === 'user.offline')).toHaveLength(30);
    // Each user.offline comes after all of that user's device offlines.
    for (const u of events.filter((e) => e.type === 'user.offline')) {
      const at = events.indexOf(u);
      expect(events.slice(at + 1).some((e) => e.data.userId === u.data.userId)).toBe(false);
    }
  });

  it('two instances racing on the reconnect of a device whose offline is held record consistent events', async () => {
    const connections = [redis.duplicate(), redis.duplicate()];
    const [a, b] = connections.map((c) => new RedisPresenceStore(c, prefix, RETENTION, { eventRetentionMs: EVENT_RETENTION, eventGraceMs: 5_000 })) as [RedisPresenceStore, RedisPresenceStore];
    const log = new RedisEventLog(redis, prefix, EVENT_RETENTION);
    const now = Date.now();
    const start = (deviceId: string, sessionId: string, instanceId: string, at: number) => ({ deviceId, sessionId, userId: `u-${deviceId}`, instanceId, now: at, interval: 400, ttl: 10_000 });
    for (let round = 0; round < 20; round++) {
      const id = `x${round}`;
      await a.connect(start(id, `s0-${round}`, 'gw-a', now));
      await a.disconnect([{ deviceId: id, sessionId: `s0-${round}`, userId: `u-${id}`, instanceId: 'gw-a' }], now, 'client_close');
      // Within the grace on even rounds, after it on odd ones; both instances at once.
      const at = now + (round % 2 === 0 ? 1_000 : 6_000);
      await Promise.all([a.connect(start(id, `sa-${round}`, 'gw-a', at)), b.connect(start(id, `sb-${round}`, 'gw-b', at))]);
      await Promise.all([a.releaseHeldOfflines(at, 10), b.releaseHeldOfflines(at, 10)]);
    }
    const events = await log.read(undefined, 1_000, now);
    await Promise.all(connections.map((c) => c.quit()));
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

  it('costs one round trip per heartbeat (one EVALSHA), and writes only what changed', async () => {
    const store = new RedisPresenceStore(redis, prefix, RETENTION);
    const now = Date.now();
    await store.connect({ deviceId: 'd1', sessionId: 's1', userId: 'u1', instanceId: 'gw-1', now, interval: 400, ttl: 10_000 });
    await store.heartbeat({ deviceId: 'd1', sessionId: 's1', instanceId: 'gw-1', now, interval: 400, ttl: 10_000 }); // loads the script
    const client = redis.duplicate();
    const monitor = await client.monitor();
    const commands: string[] = [];
    const writes: string[][] = [];
    // MONITOR lists commands in the order Redis ran them: once a marker sent after the heartbeat
    // shows up, every command the heartbeat caused has shown up before it.
    const marker = `${prefix}end-of-heartbeat`;
    let timer: NodeJS.Timeout | undefined;
    const markerSeen = new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error('marker not seen by MONITOR within 5 s')), 5_000);
      monitor.on('monitor', (_time: string, args: string[]) => {
        if (String(args[1]) === marker) return resolve();
        if (!args.some((a) => String(a).startsWith(prefix))) return;
        commands.push(String(args[0]).toLowerCase());
        if (String(args[0]).toLowerCase() === 'hset') writes.push(args.slice(2).map(String));
      });
    });
    await store.heartbeat({ deviceId: 'd1', sessionId: 's1', instanceId: 'gw-1', now: now + 100, interval: 400, ttl: 10_000 });
    await redis.echo(marker);
    await markerSeen.finally(() => clearTimeout(timer));
    monitor.disconnect();
    client.disconnect();
    expect(commands.filter((c) => c === 'evalsha' || c === 'eval')).toHaveLength(1);
    // Read the session, extend the presence key, update the record, move the expiry index entry.
    expect(commands.filter((c) => c !== 'evalsha' && c !== 'eval')).toEqual(['hmget', 'pexpire', 'hset', 'zadd']);
    // Same interval: only the heartbeat's time and the new expiry (lastSeenAt follows lastHeartbeatAt while live).
    expect(writes).toEqual([['lastHeartbeatAt', String(now + 100), 'expiresAt', String(now + 100 + 10_000)]]);
    const view = (await store.getDevices(['d1'], now + 100))[0];
    expect(view).toMatchObject({ online: true, lastHeartbeatAt: now + 100, lastSeenAt: now + 100, interval: 400, expiresAt: now + 10_100 });
    expect(await redis.pttl(`${prefix}presence:d1`)).toBeGreaterThan(10_000 - 5_000);
  });
});
