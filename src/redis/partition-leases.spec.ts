import Redis from 'ioredis';
import { deleteKeys, testRedisUrl, uniquePrefix } from '../../test/support/redis';
import { SystemClock } from '../common/clock';
import { RedisPartitionLeases, SoleLeases } from './partition-leases';
import { KeyLayout, PARTITIONS } from './partitions';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('partition leases (real Redis)', () => {
  let redis: Redis;
  let layout: KeyLayout;
  const prefix = uniquePrefix('leases');

  beforeAll(() => {
    redis = new Redis(testRedisUrl());
    layout = new KeyLayout(prefix, true);
  });
  afterAll(async () => {
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  const owner = (id: string, leaseMs = 400) => new RedisPartitionLeases(redis, layout, id, new SystemClock(), leaseMs);
  const union = (lists: (readonly number[])[]) => lists.flat().sort((a, b) => a - b);

  it("shares every partition among the live owners, each once, and hands a dead owner's share over", async () => {
    const [a, b, c] = [owner('gw-a'), owner('gw-b'), owner('gw-c')];
    await a.refresh();
    expect(a.owned()).toHaveLength(PARTITIONS);
    // Newcomers take their share as the others drop to the new quota at their next refresh.
    for (let round = 0; round < 3; round++) for (const o of [b, c, a]) await o.refresh();
    expect(union([a.owned(), b.owned(), c.owned()])).toEqual(Array.from({ length: PARTITIONS }, (_, p) => p));
    for (const o of [a, b, c]) expect(o.owned().length).toBeLessThanOrEqual(22 * 16);
    expect(Math.min(...[a, b, c].map((o) => o.owned().length))).toBeGreaterThanOrEqual(20 * 16);

    // c dies: its leases lapse after leaseMs and a, b take them; a lease is never held twice.
    await sleep(450);
    for (let round = 0; round < 2; round++) for (const o of [a, b]) await o.refresh();
    expect(union([a.owned(), b.owned()])).toEqual(Array.from({ length: PARTITIONS }, (_, p) => p));
  });

  it('gives its leases up at release, so another owner takes them at once', async () => {
    const [d, e] = [owner('gw-d', 60_000), owner('gw-e', 60_000)];
    await deleteKeys(redis, prefix);
    await d.refresh();
    await e.refresh();
    expect(e.owned()).toEqual([]);
    await d.release();
    expect(d.owned()).toEqual([]);
    await e.refresh();
    expect(e.owned()).toHaveLength(PARTITIONS);
    await e.release();
  });

  it('owns nothing once its leases may have run out without a renewal', async () => {
    const f = owner('gw-f', 100);
    await deleteKeys(redis, prefix);
    await f.refresh();
    expect(f.owned().length).toBeGreaterThan(0);
    await sleep(150);
    expect(f.owned()).toEqual([]);
  });

  it('holds the one partition of a single Redis, and the embedded store holds it always', async () => {
    const single = new KeyLayout(prefix, false);
    const g = new RedisPartitionLeases(redis, single, 'gw-g', new SystemClock(), 60_000);
    const h = new RedisPartitionLeases(redis, single, 'gw-h', new SystemClock(), 60_000);
    await deleteKeys(redis, prefix);
    await g.refresh();
    await h.refresh();
    expect(g.owned()).toEqual([0]);
    expect(h.owned()).toEqual([]);
    expect(new SoleLeases(single).owned()).toEqual([0]);
    await g.release();
  });
});
