import Redis, { Cluster } from 'ioredis';
import { FakeClock } from '../../test/support/fake-clock';
import { deleteKeys, testRedisUrl, uniquePrefix } from '../../test/support/redis';
import { TEST_EVENT_APPEND } from '../../test/support/event-append';
import { startRedisCluster } from '../../test/support/redis-servers';
import { KeyLayout } from '../redis/partitions';
import type { RedisClient } from '../redis/redis-connection';
import { EventFloors } from './event-floors.service';
import { EventEnvelope, compareEventIds, eventPosition } from './event.types';
import { EventsService } from './events.service';
import { MemoryEventLog } from './memory-event-log';
import { RedisEventLog, TIPS_MAX_AGE_MS } from './redis-event-log';

const DAY = 86_400_000;
const T0 = 1_800_000_000_000;


describe('event ids and cursors', () => {
  it('reads ids of one partition and of many, and old cursors on a partitioned layout', () => {
    expect(eventPosition('17-3')).toEqual({ ms: 17, p: 0, n: 3 });
    expect(eventPosition('17-5-3', 1024)).toEqual({ ms: 17, p: 5, n: 3 });
    expect(eventPosition('17-3', 1024)).toEqual({ ms: 16, p: 1024, n: 0 });
    expect(compareEventIds('17-5-3', '17-6-0')).toBeLessThan(0);
    expect(compareEventIds('17-5-3', '17-5-2')).toBeGreaterThan(0);
    expect(compareEventIds('18-0-0', '17-1023-9')).toBeGreaterThan(0);
  });

  it('answers 400 for a cursor that is not one', async () => {
    const service = new EventsService(new MemoryEventLog(DAY), new FakeClock(T0));
    for (const after of ['x', '1-2-3-4', '1-1025-0', '-1-0']) await expect(service.page({ after })).rejects.toMatchObject({ status: 400 });
    await expect(service.page({ after: '1-1024-0' })).resolves.toEqual({ events: [], next: '1-1024-0' });
  });
});

type Mode = { name: string; sharded: boolean; cluster: boolean };
const MODES: Mode[] = [
  { name: 'single Redis, one partition', sharded: false, cluster: false },
  { name: 'single Redis, 1024 partitions', sharded: true, cluster: false },
  { name: 'Redis Cluster, 1024 partitions', sharded: true, cluster: true },
];

describe.each(MODES)('RedisEventLog ($name)', ({ sharded, cluster }) => {
  let redis: RedisClient;
  let stop = () => undefined as void;
  const prefix = uniquePrefix('event-log');
  const keys = new KeyLayout(prefix, sharded);
  let clock: FakeClock;
  let log: RedisEventLog;
  let service: EventsService;
  let floors: EventFloors;
  let append: ReturnType<typeof TEST_EVENT_APPEND.bind>;

  beforeAll(async () => {
    if (cluster) {
      const c = await startRedisCluster();
      redis = new Cluster(c.spec.split(',').map((n) => ({ host: '127.0.0.1', port: Number(n.split(':')[1]) })));
      stop = c.kill;
    } else {
      redis = new Redis(testRedisUrl());
    }
    append = TEST_EVENT_APPEND.bind(redis);
    floors = new EventFloors(redis, keys, DAY);
  }, 30_000);
  afterAll(async () => {
    if (!cluster) await deleteKeys(redis, prefix);
    redis.disconnect();
    stop();
  });
  beforeEach(async () => {
    if (cluster) await Promise.all((redis as Cluster).nodes('master').map((n) => n.flushall()));
    else await deleteKeys(redis, prefix);
    clock = new FakeClock(T0);
    log = new RedisEventLog(redis, keys, DAY, clock);
    service = new EventsService(log, clock);
  });

  const emit = (deviceId: string, type: string, n: number, now = clock.now()) =>
    append({ keys: { events: `${keys.of(deviceId)}events` }, args: { prefix: keys.of(deviceId), now, retention: DAY, etype: type, data: JSON.stringify({ deviceId, n }) } });
  /** What the lease holders do every second, and the tips cache running out. */
  const settle = async () => {
    clock.advance(TIPS_MAX_AGE_MS);
    if (keys.partitions > 1) await floors.advance(Array.from({ length: keys.partitions }, (_, p) => p), clock.now());
  };
  const pageAll = async (types: string | undefined, limit: number, after?: string) => {
    const seen: EventEnvelope[] = [];
    let cursor = after;
    for (let i = 0; i < 10_000; i++) {
      const page = await service.page({ after: cursor, limit: String(limit), types });
      seen.push(...page.events);
      // With a filter an empty page may still move the cursor past what it scanned.
      if (page.events.length === 0 && page.next === (cursor ?? '0-0')) return { seen, next: page.next };
      cursor = page.next;
    }
    throw new Error('paging did not end');
  };

  it('pages through events of many partitions in log order with a types filter: exact, no skip, no repeat', async () => {
    // 120 devices: some 110 of the 1024 partitions hold events, each page merges them.
    const devices = Array.from({ length: 120 }, (_, i) => `dev-${i}`);
    const written: string[] = [];
    for (let round = 0; round < 4; round++) {
      await Promise.all(devices.map((d, i) => emit(d, (i + round) % 3 === 0 ? 'device.offline' : 'device.online', round)));
      clock.advance(i2(round));
    }
    // One busy device: its partition's buffer runs dry many times within a page and is read on.
    for (let n = 0; n < 60; n++) await emit('busy', n % 2 ? 'device.online' : 'device.offline', n);
    await Promise.all(devices.map((d) => emit(d, 'device.online', 4)));
    await settle();
    const all = await pageAll(undefined, 1_000);
    expect(all.seen).toHaveLength(devices.length * 5 + 60);
    const ids = all.seen.map((e) => e.id);
    expect([...ids].sort(compareEventIds)).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    if (sharded) expect(ids.every((id) => /^\d+-\d+-\d+$/.test(id))).toBe(true);
    else expect(ids.every((id) => /^\d+-\d+$/.test(id))).toBe(true);
    // Per device, stream order is commit order.
    for (const d of devices.slice(0, 20)) expect(all.seen.filter((e) => e.data.deviceId === d).map((e) => e.data.n)).toEqual([0, 1, 2, 3, 4]);
    expect(all.seen.filter((e) => e.data.deviceId === 'busy').map((e) => e.data.n)).toEqual(Array.from({ length: 60 }, (_, n) => n));
    written.push(...ids);

    for (const limit of [1, 7, 100]) {
      const offline = await pageAll('device.offline', limit);
      expect(offline.seen.map((e) => e.id)).toEqual(all.seen.filter((e) => e.type === 'device.offline').map((e) => e.id));
    }
    const pages = await pageAll(undefined, 13);
    expect(pages.seen.map((e) => e.id)).toEqual(written);
    // Some 270 pages over 110 partitions' streams: 3-5 s alone on a Cluster, more under CI's load.
  }, 60_000);

  it('keeps an event appended late with a stale clock after a cursor already handed out', async () => {
    for (let i = 0; i < 50; i++) await emit(`a-${i}`, 'device.online', i);
    await settle();
    const first = await pageAll('device.*', 10);
    expect(first.seen).toHaveLength(50);
    // A script whose `now` was captured long ago (a Redis stall, a lagging clock) appends now.
    const stale = clock.now() - 5_000;
    await emit('late-dev', 'device.offline', 99, stale);
    for (let i = 0; i < 20; i++) await emit(`b-${i}`, 'device.online', i);
    clock.advance(1_000);
    await settle();
    const rest = await pageAll('device.*', 10, first.next);
    expect(rest.seen).toHaveLength(21);
    expect(rest.seen.map((e) => e.data.deviceId)).toContain('late-dev');
    const ids = [...first.seen, ...rest.seen].map((e) => e.id);
    expect(new Set(ids).size).toBe(71);
    expect([...ids].sort(compareEventIds)).toEqual(ids);
    const late = rest.seen.find((e) => e.data.deviceId === 'late-dev')!;
    expect(compareEventIds(late.id, first.next)).toBeGreaterThan(0);
  });

  it('pages exactly while events keep coming with stale clocks and floors move on', async () => {
    const collected: EventEnvelope[] = [];
    let cursor: string | undefined;
    const pageOnce = async () => {
      for (;;) {
        const page = await service.page({ after: cursor, limit: '17', types: 'device.offline,user.*' });
        collected.push(...page.events);
        const moved = page.next !== (cursor ?? '0-0');
        cursor = page.next;
        if (!moved) return;
      }
    };
    let recorded = 0;
    for (let round = 0; round < 30; round++) {
      await Promise.all(
        Array.from({ length: 40 }, (_, i) => {
          const type = ['device.offline', 'device.online', 'user.online'][(round + i) % 3]!;
          if (type !== 'device.online') recorded++;
          // Some callers' clocks lag by up to 2 s (a stall, skew between instances).
          return emit(`r${(round * 7 + i) % 97}`, type, round, clock.now() - (i % 4 === 0 ? Math.floor(Math.random() * 2_000) : 0));
        }),
      );
      clock.advance(100);
      if (round % 3 === 0) await settle();
      await pageOnce();
    }
    await settle();
    await pageOnce();
    const ids = collected.map((e) => e.id);
    expect(ids).toHaveLength(recorded);
    expect(new Set(ids).size).toBe(recorded);
    expect([...ids].sort(compareEventIds)).toEqual(ids);
    // Per device, in stream (commit) order.
    for (let d = 0; d < 97; d++) {
      const rounds = collected.filter((e) => e.data.deviceId === `r${d}`).map((e) => e.data.n as number);
      expect(rounds).toEqual([...rounds].sort((a, b) => a - b));
    }
  }, 60_000);

  it('hands out nothing past the lowest floor on a partitioned layout, and everything at once with one partition', async () => {
    await settle();
    await emit('x-1', 'device.online', 1);
    clock.advance(TIPS_MAX_AGE_MS);
    const page = await service.page({});
    if (keys.partitions > 1) {
      expect(page.events).toEqual([]);
      await settle();
      expect((await service.page({})).events).toHaveLength(1);
    } else {
      expect(page.events).toHaveLength(1);
    }
  });

  it('reads a cursor from before partitioning as a time (at least once), and ids of one partition as its stream ids', async () => {
    await emit('y-1', 'device.online', 1);
    clock.advance(10);
    await emit('y-2', 'device.online', 2);
    await settle();
    const [a, b] = (await service.page({})).events;
    const t = Number(b!.id.split('-')[0]);
    // On a partitioned layout `<t>-0` means "from t on"; with one partition it is stream entry t-0 (b itself).
    const after = (await service.page({ after: `${t}-0` })).events.map((e) => e.id);
    expect(after).toEqual(keys.partitions > 1 ? [b!.id] : []);
    expect(compareEventIds(a!.id, b!.id)).toBeLessThan(0);
    const entry = (await log.readPartition(keys.partitionOf('y-2'), '0-0', 10)).find((e) => e.event.data.deviceId === 'y-2');
    expect(entry!.event.id).toBe(b!.id);
    expect(await log.lastEntry(keys.partitionOf('y-2'))).toBe(entry!.entry);
  });
});

describe('event floors (real Redis)', () => {
  const prefix = uniquePrefix('event-floors');
  const redis = new Redis(testRedisUrl());
  afterAll(async () => {
    await deleteKeys(redis, prefix);
    redis.disconnect();
  });

  it('moves a floor up only, by 1 ms at least at each call, keeps it with a TTL, and clamps the next append above it', async () => {
    const keys = new KeyLayout(prefix, true);
    const floors = new EventFloors(redis, keys, DAY);
    await floors.advance([3, 700], T0 + 1_000);
    await floors.advance([3], T0); // a lagging clock, or a second holder during a handover
    expect(await redis.get(`${keys.at(3)}events:floor`)).toBe(String(T0 + 1_001));
    await floors.advance([3], T0 + 1_001); // a clock that stands still
    expect(await redis.get(`${keys.at(3)}events:floor`)).toBe(String(T0 + 1_002));
    expect(await redis.pttl(`${keys.at(700)}events:floor`)).toBeGreaterThan(DAY - 60_000);
    expect(await redis.exists(`${keys.at(4)}events:floor`)).toBe(0);
    const append = TEST_EVENT_APPEND.bind(redis);
    await append({ keys: { events: `${keys.at(3)}events` }, args: { prefix: keys.at(3), now: T0 - 50, retention: DAY, etype: 'device.online', data: '{}' } });
    const entries = await redis.xrange(`${keys.at(3)}events`, '-', '+');
    expect(entries.map(([id]) => id)).toEqual([`${T0 + 1_003}-0`]);
  });
});

function i2(round: number): number {
  return round % 2 === 0 ? 0 : 3; // some rounds share a millisecond
}
