import Redis, { Cluster } from 'ioredis';
import { deleteKeys, keysWithoutTtl, testRedisUrl, uniquePrefix } from '../../../test/support/redis';
import { TEST_EVENT_APPEND } from '../../../test/support/event-append';
import { startRedisCluster } from '../../../test/support/redis-servers';
import { SystemClock } from '../../common/clock';
import { MetricsService } from '../../metrics/metrics.service';
import { RedisPartitionLeases } from '../../redis/partition-leases';
import { KeyLayout } from '../../redis/partitions';
import type { RedisClient } from '../../redis/redis-connection';
import { EventEnvelope } from '../event.types';
import { RedisEventLog } from '../redis-event-log';
import { EventTail } from './event-tail';
import { WebhookDispatcher } from './webhook-dispatcher';
import { AttemptResult, WebhookSender } from './webhook-sender';
import { MemoryWebhookQueue } from './memory-webhook-queue';
import { RedisWebhookQueue } from './redis-webhook-queue';
import { Claim, QueuedEvent, WebhookQueue, groupOf } from './webhook-queue';

const T0 = 1_800_000_000_000;
const LEASE = 6_000;
const DAY = 86_400_000;

const ev = (key: string, ms: number, n = 0): QueuedEvent => ({ key, id: `${ms}-${n}`, body: JSON.stringify({ id: `${ms}-${n}`, key }) });

/** The same rules, case by case, for every implementation; `p`: the partition the events come from. */
function queueCases(make: () => WebhookQueue, p: number) {
  let q: WebhookQueue;
  const g = groupOf(p);
  let position = '0-0';
  const enqueue = async (events: QueuedEvent[], now: number) => {
    const expected = position;
    position = `${now}-${Math.floor(Math.random() * 1e6)}`;
    expect(await q.enqueue(p, expected, position, events, now)).toEqual({ moved: false, refused: 0 });
  };
  const claimAll = async (now: number, max = 100): Promise<Claim[]> => (await q.claim(g, 'me:1', now, max, now + LEASE)).claims;
  const done = (c: Claim) => ({ group: c.group, key: c.key, token: c.token, id: c.id, outcome: { kind: 'done' as const } });

  beforeEach(async () => {
    q = make();
    position = await q.cursor(p, async () => '0-0');
  });

  it('hands out one event per key, in queue order; the next only after the first is settled', async () => {
    await enqueue([ev('d:a', T0, 0), ev('d:a', T0, 1), ev('d:b', T0, 2)], T0);
    const first = await claimAll(T0);
    expect(first.map((c) => [c.group, c.key, c.id]).sort()).toEqual([
      [g, 'd:a', `${T0}-0`],
      [g, 'd:b', `${T0}-2`],
    ]);
    expect(await claimAll(T0 + 1)).toEqual([]); // both keys are taken
    await q.settle([done(first.find((c) => c.key === 'd:a')!)], T0 + 2);
    const next = await claimAll(T0 + 2);
    expect(next.map((c) => [c.key, c.id, c.body])).toEqual([['d:a', `${T0}-1`, ev('d:a', T0, 1).body]]);
  });

  it('a retry holds back only its own key, and counts the attempts of its head event', async () => {
    await enqueue([ev('d:a', T0, 0), ev('d:b', T0, 1), ev('d:b', T0, 2)], T0);
    const [a, b] = (await claimAll(T0)).sort((x, y) => x.key.localeCompare(y.key));
    await q.settle([{ group: g, key: a!.key, token: a!.token, id: a!.id, outcome: { kind: 'retry', at: T0 + 60_000, attempts: 1 } }, done(b!)], T0 + 1);
    const now = await q.claim(g, 'me:2', T0 + 2, 100, T0 + 2 + LEASE);
    expect(now.claims.map((c) => c.id)).toEqual([`${T0}-2`]);
    expect(now.nextDue).toBeLessThanOrEqual(T0 + 60_000);
    await q.settle(now.claims.map(done), T0 + 3);
    expect(await claimAll(T0 + 59_999)).toEqual([]);
    const again = await claimAll(T0 + 60_000);
    expect(again.map((c) => [c.id, c.attempts])).toEqual([[`${T0}-0`, 1]]);
  });

  it("a dead instance's claim is taken over when its lease runs out; its late outcome is ignored", async () => {
    await enqueue([ev('d:a', T0, 0), ev('d:a', T0, 1)], T0);
    const [dead] = await claimAll(T0);
    expect(await q.claim(g, 'other:1', T0 + LEASE - 1, 10, T0 + 2 * LEASE)).toMatchObject({ claims: [] });
    const [taken] = (await q.claim(g, 'other:2', T0 + LEASE, 10, T0 + 2 * LEASE)).claims;
    expect(taken!.id).toBe(dead!.id);
    await q.settle([done(dead!)], T0 + LEASE + 1); // stale token: nothing happens
    expect(await claimAll(T0 + LEASE + 2)).toEqual([]);
    await q.settle([done(taken!)], T0 + LEASE + 3);
    expect((await claimAll(T0 + LEASE + 4)).map((c) => c.id)).toEqual([`${T0}-1`]);
  });

  it('renewing keeps a claim from being taken over', async () => {
    await enqueue([ev('d:a', T0)], T0);
    const [c] = await claimAll(T0);
    await q.renew([c!], T0 + 2 * LEASE);
    expect(await claimAll(T0 + LEASE + 1)).toEqual([]);
    expect(await claimAll(T0 + 2 * LEASE)).toHaveLength(1);
  });

  it('new events for a key waiting for a retry wait behind its head', async () => {
    await enqueue([ev('d:a', T0, 0)], T0);
    const [c] = await claimAll(T0);
    await q.settle([{ group: g, key: c!.key, token: c!.token, id: c!.id, outcome: { kind: 'retry', at: T0 + 5_000, attempts: 1 } }], T0 + 1);
    await enqueue([ev('d:a', T0 + 10, 0)], T0 + 10);
    expect(await claimAll(T0 + 10)).toEqual([]);
    expect((await claimAll(T0 + 5_000)).map((x) => x.id)).toEqual([`${T0}-0`]);
  });

  it("copies a partition once: a cursor that moved meanwhile refuses the copy, and the queue keeps each partition's cursor", async () => {
    expect(await q.cursor(p, async () => '5-5')).toBe('0-0'); // kept: stored first
    expect(await q.enqueue(p, '0-0', '7-0', [ev('d:a', T0)], T0)).toEqual({ moved: false, refused: 0 });
    // Another instance that still believed 0-0 (a lease handover) writes nothing.
    expect(await q.enqueue(p, '0-0', '7-0', [ev('d:a', T0)], T0)).toEqual({ moved: true });
    expect(await q.cursor(p, async () => '0-0')).toBe('7-0');
    expect(await q.cursor(p + 1, async () => '9-1')).toBe('9-1'); // another partition starts where its stream ends
    expect((await claimAll(T0)).map((c) => c.id)).toEqual([`${T0}-0`]);
  });

  it('reports the backlog of the groups asked for: the oldest queued event and the keys waiting', async () => {
    expect(await q.backlog([g])).toEqual({ oldest: undefined, keys: 0 });
    await enqueue([ev('d:a', T0 + 5), ev('d:b', T0 + 9)], T0 + 10);
    expect(await q.backlog([g])).toEqual({ oldest: T0 + 5, keys: 2 });
    expect(await q.backlog([])).toEqual({ oldest: undefined, keys: 0 });
    const a = (await claimAll(T0 + 10)).find((c) => c.key === 'd:a')!;
    await q.settle([done(a)], T0 + 11);
    expect(await q.backlog([g])).toEqual({ oldest: T0 + 9, keys: 1 });
  });

  it('keeps the 410 mark for every instance until cleared', async () => {
    expect(await q.isDisabled()).toBe(false);
    await q.setDisabled(true);
    expect(await q.isDisabled()).toBe(true);
    await q.setDisabled(false);
    expect(await q.isDisabled()).toBe(false);
  });
}

describe('MemoryWebhookQueue', () => {
  queueCases(() => new MemoryWebhookQueue(), 0);
});

describe('MemoryWebhookQueue bound', () => {
  it('refuses events past its bound, and has room again once events leave', async () => {
    const q = new MemoryWebhookQueue(2);
    await q.cursor(0, async () => '0-0');
    expect(await q.enqueue(0, '0-0', '3-0', [ev('d:a', T0, 0), ev('d:b', T0, 1), ev('d:c', T0, 2)], T0)).toEqual({ moved: false, refused: 1 });
    const [a] = (await q.claim(0, 'me:1', T0, 1, T0 + LEASE)).claims;
    await q.settle([{ group: 0, key: a!.key, token: a!.token, id: a!.id, outcome: { kind: 'done' } }], T0);
    expect(await q.enqueue(0, '3-0', '4-0', [ev('d:c', T0, 3)], T0)).toEqual({ moved: false, refused: 0 });
    expect(await q.backlog([0])).toEqual({ oldest: T0, keys: 2 });
  });
});

type Mode = { name: string; sharded: boolean; cluster: boolean };
const MODES: Mode[] = [
  { name: 'single Redis, one partition', sharded: false, cluster: false },
  { name: 'single Redis, 1024 partitions', sharded: true, cluster: false },
  { name: 'Redis Cluster, 1024 partitions', sharded: true, cluster: true },
];


const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

/** Records what it is sent; `hang` keeps POSTs unanswered (a dying instance) until released. */
class RecordingSender extends WebhookSender {
  readonly seen: EventEnvelope[] = [];
  private readonly hung: (() => void)[] = [];
  constructor(private readonly hang = false) {
    super(1);
  }
  override async post(_url: URL, _headers: Record<string, string>, body: string): Promise<AttemptResult> {
    if (this.hang) {
      await new Promise<void>((resolve) => this.hung.push(resolve));
      return { error: 'the instance died' };
    }
    await new Promise((r) => setTimeout(r, Math.random() * 3));
    this.seen.push(JSON.parse(body) as EventEnvelope);
    return { status: 204 };
  }
  release(): void {
    this.hung.splice(0).forEach((r) => r());
  }
}

describe.each(MODES)('RedisWebhookQueue ($name)', ({ sharded, cluster }) => {
  let redis: RedisClient;
  let kill = () => undefined as void;
  const prefix = uniquePrefix('webhook-queue');
  let n = 0;
  const layout = () => new KeyLayout(`${prefix}${++n}:`, sharded);

  beforeAll(async () => {
    if (cluster) {
      const c = await startRedisCluster();
      redis = new Cluster(c.spec.split(',').map((node) => ({ host: '127.0.0.1', port: Number(node.split(':')[1]) })));
      kill = c.kill;
    } else {
      redis = new Redis(testRedisUrl());
    }
  }, 30_000);
  afterAll(async () => {
    if (!cluster) await deleteKeys(redis, prefix);
    redis.disconnect();
    kill();
  });

  queueCases(() => new RedisWebhookQueue(redis, layout(), 'wh:x:', 3_600_000), sharded ? 37 : 0);

  it('continues a queue from before partitioning at its single-stream cursor', async () => {
    const keys = layout();
    await redis.set(`${keys.at(0)}wh:x:cursor`, '9-3');
    const q = new RedisWebhookQueue(redis, keys, 'wh:x:', 3_600_000);
    expect(await q.cursor(0, async () => '12-0')).toBe('9-3');
  });

  if (!cluster) {
    it('leaves no key without a TTL but the one that marks a 410 until the next start', async () => {
      const keys = layout();
      const q = new RedisWebhookQueue(redis, keys, 'wh:x:', 3_600_000);
      const p = sharded ? 300 : 0;
      await q.cursor(p, async () => '0-0');
      await q.enqueue(p, '0-0', '2-0', [ev('d:a', T0), ev('d:b', T0, 1)], T0);
      const [a, b] = (await q.claim(groupOf(p), 'me:1', T0, 10, T0 + LEASE)).claims;
      await q.settle([{ group: a!.group, key: a!.key, token: a!.token, id: a!.id, outcome: { kind: 'retry', at: T0 + 1, attempts: 1 } }], T0);
      await q.renew([b!], T0 + LEASE);
      await q.setDisabled(true);
      expect(await keysWithoutTtl(redis as Redis, keys.prefix, [`${keys.control.slice(keys.prefix.length)}wh:x:disabled`])).toBe(0);
    });
  }

  describe('delivery by the lease holders', () => {
    const timings = { claimLeaseMs: 600, idlePollMs: 50, intakePollMs: 50, backlogEveryMs: 1_000 };
    const running: { dispatcher: WebhookDispatcher; timer: NodeJS.Timeout; sender: RecordingSender; tail?: EventTail }[] = [];
    afterEach(async () => {
      for (const r of running.splice(0)) {
        clearInterval(r.timer);
        r.sender.release();
        await r.dispatcher.stop(100);
        await r.tail?.close();
        await r.dispatcher.stopped();
      }
    });

    /** An instance: its partition leases (refreshed every 100 ms, lasting 500 ms) and its dispatcher for one URL. */
    const instance = async (keys: KeyLayout, owner: string, sender: RecordingSender) => {
      const clock = new SystemClock();
      const leases = new RedisPartitionLeases(redis, keys, owner, clock, 500);
      await leases.refresh();
      const timer = setInterval(() => void leases.refresh().catch(() => undefined), 100);
      // As WebhookService does: a blocking read where the log is one stream.
      const tail = keys.partitions === 1 ? new EventTail(() => new Redis(testRedisUrl(), { lazyConnect: true }), keys) : undefined;
      const dispatcher = new WebhookDispatcher(
        { url: 'http://receiver.test/', label: 'receiver', owner, secret: SECRET, matches: () => true, retryWindowMs: 60_000, timeoutMs: 1_000, concurrency: 32, timings },
        new RedisWebhookQueue(redis, keys, 'wh:t:', 3_600_000),
        new RedisEventLog(redis, keys, DAY),
        leases,
        sender,
        new MetricsService(),
        clock,
        Math.random,
        undefined,
        tail,
      );
      await dispatcher.start();
      const handle = { dispatcher, timer, sender, leases, tail };
      running.push(handle);
      return handle;
    };
    const emitter = (keys: KeyLayout) => {
      const append = TEST_EVENT_APPEND.bind(redis);
      return (deviceId: string, i: number) =>
        append({
          keys: { events: `${keys.of(deviceId)}events` },
          args: { prefix: keys.of(deviceId), now: Date.now(), retention: DAY, etype: 'device.online', data: JSON.stringify({ deviceId, i }) },
        });
    };
    const perDevice = (seen: EventEnvelope[]) => {
      const order = new Map<string, number[]>();
      for (const e of seen) order.set(e.data.deviceId as string, [...(order.get(e.data.deviceId as string) ?? []), e.data.i as number]);
      return order;
    };
    const until = async (check: () => boolean, timeoutMs = 15_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!check()) {
        if (Date.now() > deadline) throw new Error('condition not met in time');
        await new Promise((r) => setTimeout(r, 20));
      }
    };

    it("delivers each device's events once and in order, from two instances sharing the partitions", async () => {
      const keys = layout();
      const [sa, sb] = [new RecordingSender(), new RecordingSender()];
      await instance(keys, 'gw-a', sa);
      await instance(keys, 'gw-b', sb);
      const emit = emitter(keys);
      const devices = Array.from({ length: 120 }, (_, d) => `dev-${d}`);
      for (let i = 0; i < 5; i++) {
        await Promise.all(devices.map((d) => emit(d, i)));
        await new Promise((r) => setTimeout(r, 30));
      }
      await until(() => sa.seen.length + sb.seen.length >= 600, 45_000); // 15 s ran out once under CI's load
      await new Promise((r) => setTimeout(r, 200));
      const all = [...sa.seen, ...sb.seen];
      expect(all).toHaveLength(600);
      // Each device's events come from one partition's stream, so one group's queue and one instance at a time.
      for (const d of devices) {
        const mine = [sa, sb].map((s) => s.seen.filter((e) => e.data.deviceId === d).map((e) => e.data.i));
        expect(mine.flat().sort()).toEqual([0, 1, 2, 3, 4]);
        for (const list of mine) expect(list).toEqual([...list].sort());
      }
      expect(perDevice(all).size).toBe(120);
      if (sharded) expect(new Set(all.map((e) => e.id.split('-')[1])).size).toBeGreaterThan(50);
    }, 90_000);

    it("a dead lease holder's partitions get their webhooks, claimed or not yet copied, from another instance", async () => {
      const keys = layout();
      const dying = new RecordingSender(true);
      const a = await instance(keys, 'gw-dead', dying);
      const emit = emitter(keys);
      const devices = Array.from({ length: 40 }, (_, d) => `dev-${d}`);
      await Promise.all(devices.map((d) => emit(d, 0)));
      // gw-dead copies and claims them, then dies with its POSTs in flight: no settle, no lease release.
      await new Promise((r) => setTimeout(r, 400));
      clearInterval(a.timer);
      await a.dispatcher.stop(0);
      await Promise.all(devices.map((d) => emit(d, 1)));
      const sb = new RecordingSender();
      await instance(keys, 'gw-live', sb);
      // The dead holder's leases run out first; 30 s for that and the copies under CI's load (15 ran out once).
      await until(() => sb.seen.length >= 80, 30_000);
      const order = perDevice(sb.seen);
      for (const d of devices) expect(order.get(d)).toEqual([0, 1]);
    }, 60_000);
  });
});
