import Redis, { Cluster } from 'ioredis';
import { startRedisCluster } from '../../test/support/redis-servers';
import { deleteKeys, testRedisUrl, uniquePrefix } from '../../test/support/redis';
import { DuePartitions } from './due-partitions';
import { KeyLayout, PARTITIONS } from './partitions';

const ALL = Array.from({ length: PARTITIONS }, (_, p) => p);

async function evalCalls(node: Redis): Promise<number> {
  const stats = (await node.info('commandstats'));
  return Number(/cmdstat_eval:calls=(\d+)/.exec(stats)?.[1] ?? 0);
}

describe.each(['single Redis, 1024 partitions', '3-master Cluster'] as const)('DuePartitions (real Redis: %s)', (mode) => {
  const prefix = uniquePrefix('due');
  const layout = new KeyLayout(prefix, true);
  let servers: Awaited<ReturnType<typeof startRedisCluster>> | undefined;
  let client: Redis | Cluster;
  let masters: () => Redis[];

  beforeAll(async () => {
    if (mode === '3-master Cluster') {
      servers = await startRedisCluster();
      const cluster = new Cluster(
        servers.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
        { enableAutoPipelining: true },
      );
      await cluster.ping();
      client = cluster;
      masters = () => cluster.nodes('master');
    } else {
      const redis = new Redis(testRedisUrl());
      client = redis;
      masters = () => [redis];
    }
  }, 30_000);
  afterEach(async () => {
    await deleteKeys(client, prefix);
  });
  afterAll(async () => {
    await client.quit();
    servers?.kill();
  });

  const at = (p: number, name: string, score: number, member = 'm') => client.zadd(`${layout.at(p)}${name}`, score, member);

  it('names the partitions whose index has an entry due and no others, reading every node once', async () => {
    await Promise.all([at(3, 'a', 100), at(3, 'a', 5_000, 'later'), at(500, 'a', 999), at(700, 'a', 1_001), at(1_023, 'a', -5)]);
    const before = await Promise.all(masters().map(evalCalls));
    const due = await new DuePartitions(client, layout).filter(ALL, [{ name: 'a', dueBy: 1_000 }]);
    const after = await Promise.all(masters().map(evalCalls));
    expect(due).toEqual([3, 500, 1_023]); // 700's head is after 1000; the others' indexes are empty
    expect(after.map((n, i) => n - before[i]!)).toEqual(masters().map(() => 1));
  });

  it('takes a partition when any of several indexes is due, each by its own time', async () => {
    await Promise.all([at(10, 'a', 2_000), at(20, 'b', 1_500), at(30, 'b', 500), at(40, 'a', 900)]);
    const due = new DuePartitions(client, layout);
    const indexes = [
      { name: 'a', dueBy: 1_000 },
      { name: 'b', dueBy: 1_000 - 500 },
    ];
    expect(await due.filter(ALL, indexes)).toEqual([30, 40]);
    // Only the partitions asked about, in the order asked.
    expect(await due.filter([40, 20, 10], indexes)).toEqual([40]);
  });

  it('returns every partition when the store names no index, and asks nothing with one partition', async () => {
    expect(await new DuePartitions(client, layout).filter([1, 2, 3], [])).toEqual([1, 2, 3]);
    const before = await Promise.all(masters().map(evalCalls));
    const single = new KeyLayout(prefix, false);
    expect(await new DuePartitions(client, single).filter([0], [{ name: 'a', dueBy: 0 }])).toEqual([0]);
    expect(await Promise.all(masters().map(evalCalls))).toEqual(before);
  });

  if (mode === '3-master Cluster') {
    it('counts as due every partition of a node it could not read (its slot map was out of date)', async () => {
      const cluster = client as Cluster;
      await at(5, 'a', 1);
      // A stale map: every slot "served" by the first master. The others refuse the keys they do not serve.
      const first = cluster.slots.find((owners) => owners?.length)![0]!;
      const saved = cluster.slots.map((owners) => owners);
      try {
        for (let s = 0; s < cluster.slots.length; s++) cluster.slots[s] = [first];
        const due = await new DuePartitions(cluster, layout).filter(ALL, [{ name: 'a', dueBy: 1_000 }]);
        expect(due).toEqual(ALL);
      } finally {
        saved.forEach((owners, s) => (cluster.slots[s] = owners));
      }
    });
  }
});
