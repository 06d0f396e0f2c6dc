import Redis from 'ioredis';
import { deleteKeys, keysWithoutTtl, testRedisUrl, uniquePrefix } from '../../../test/support/redis';
import { MemoryWebhookQueue } from './memory-webhook-queue';
import { RedisWebhookQueue } from './redis-webhook-queue';
import { Claim, QueuedEvent, WebhookQueue } from './webhook-queue';

const T0 = 1_800_000_000_000;
const LEASE = 6_000;

const ev = (key: string, ms: number, n = 0): QueuedEvent => ({ key, id: `${ms}-${n}`, body: JSON.stringify({ id: `${ms}-${n}`, key }) });

/** The same rules, case by case, for both implementations. */
function queueCases(make: () => WebhookQueue) {
  let q: WebhookQueue;
  const claimAll = async (now: number, max = 100): Promise<Claim[]> => (await q.claim('me:1', now, max, now + LEASE)).claims;
  const done = (c: Claim) => ({ key: c.key, token: c.token, id: c.id, outcome: { kind: 'done' as const } });

  beforeEach(async () => {
    q = make();
    expect(await q.holdIntake('me', T0, 5_000)).toBe(true);
  });

  it('hands out one event per key, in queue order; the next only after the first is settled', async () => {
    await q.enqueue('me', '3-0', [ev('d:a', T0, 0), ev('d:a', T0, 1), ev('d:b', T0, 2)], T0);
    const first = await claimAll(T0);
    expect(first.map((c) => [c.key, c.id]).sort()).toEqual([
      ['d:a', `${T0}-0`],
      ['d:b', `${T0}-2`],
    ]);
    expect(await claimAll(T0 + 1)).toEqual([]); // both keys are taken
    await q.settle([done(first.find((c) => c.key === 'd:a')!)], T0 + 2);
    const next = await claimAll(T0 + 2);
    expect(next.map((c) => [c.key, c.id, c.body])).toEqual([['d:a', `${T0}-1`, ev('d:a', T0, 1).body]]);
  });

  it('a retry holds back only its own key, and counts the attempts of its head event', async () => {
    await q.enqueue('me', '2-0', [ev('d:a', T0, 0), ev('d:b', T0, 1), ev('d:b', T0, 2)], T0);
    const [a, b] = (await claimAll(T0)).sort((x, y) => x.key.localeCompare(y.key));
    await q.settle([{ key: a!.key, token: a!.token, id: a!.id, outcome: { kind: 'retry', at: T0 + 60_000, attempts: 1 } }, done(b!)], T0 + 1);
    const now = await q.claim('me:2', T0 + 2, 100, T0 + 2 + LEASE);
    expect(now.claims.map((c) => c.id)).toEqual([`${T0}-2`]);
    expect(now.nextDue).toBeLessThanOrEqual(T0 + 60_000);
    await q.settle(now.claims.map(done), T0 + 3);
    expect(await claimAll(T0 + 59_999)).toEqual([]);
    const again = await claimAll(T0 + 60_000);
    expect(again.map((c) => [c.id, c.attempts])).toEqual([[`${T0}-0`, 1]]);
  });

  it("a dead instance's claim is taken over when its lease runs out; its late outcome is ignored", async () => {
    await q.enqueue('me', '1-0', [ev('d:a', T0, 0), ev('d:a', T0, 1)], T0);
    const [dead] = await claimAll(T0);
    expect(await q.claim('other:1', T0 + LEASE - 1, 10, T0 + 2 * LEASE)).toMatchObject({ claims: [] });
    const [taken] = (await q.claim('other:2', T0 + LEASE, 10, T0 + 2 * LEASE)).claims;
    expect(taken!.id).toBe(dead!.id);
    await q.settle([done(dead!)], T0 + LEASE + 1); // stale token: nothing happens
    expect(await claimAll(T0 + LEASE + 2)).toEqual([]);
    await q.settle([done(taken!)], T0 + LEASE + 3);
    expect((await claimAll(T0 + LEASE + 4)).map((c) => c.id)).toEqual([`${T0}-1`]);
  });

  it('renewing keeps a claim from being taken over', async () => {
    await q.enqueue('me', '1-0', [ev('d:a', T0)], T0);
    const [c] = await claimAll(T0);
    await q.renew([c!], T0 + 2 * LEASE);
    expect(await claimAll(T0 + LEASE + 1)).toEqual([]);
    expect(await claimAll(T0 + 2 * LEASE)).toHaveLength(1);
  });

  it('new events for a key waiting for a retry wait behind its head', async () => {
    await q.enqueue('me', '1-0', [ev('d:a', T0, 0)], T0);
    const [c] = await claimAll(T0);
    await q.settle([{ key: c!.key, token: c!.token, id: c!.id, outcome: { kind: 'retry', at: T0 + 5_000, attempts: 1 } }], T0 + 1);
    await q.enqueue('me', '2-0', [ev('d:a', T0 + 10, 0)], T0 + 10);
    expect(await claimAll(T0 + 10)).toEqual([]);
    expect((await claimAll(T0 + 5_000)).map((x) => x.id)).toEqual([`${T0}-0`]);
  });

  it('keeps the cursor, and reports the backlog: the oldest queued event and the keys waiting', async () => {
    expect(await q.cursor()).toBe('0-0'); // an empty log
    expect(await q.cursor()).toBe('0-0');
    expect(await q.backlog()).toEqual({ oldest: undefined, keys: 0 });
    await q.enqueue('me', '7-0', [ev('d:a', T0 + 5), ev('d:b', T0 + 9)], T0 + 10);
    expect(await q.cursor()).toBe('7-0');
    expect(await q.backlog()).toEqual({ oldest: T0 + 5, keys: 2 });
    const a = (await claimAll(T0 + 10)).find((c) => c.key === 'd:a')!;
    await q.settle([done(a)], T0 + 11);
    expect(await q.backlog()).toEqual({ oldest: T0 + 9, keys: 1 });
  });

  it('a disabled URL hands out nothing until enabled again', async () => {
    await q.enqueue('me', '1-0', [ev('d:a', T0)], T0);
    await q.setDisabled(true);
    expect(await q.claim('me:1', T0, 10, T0 + LEASE)).toMatchObject({ claims: [], disabled: true });
    await q.setDisabled(false);
    expect(await q.claim('me:2', T0, 10, T0 + LEASE)).toMatchObject({ disabled: false, claims: [{ id: `${T0}-0` }] });
  });
}

describe('MemoryWebhookQueue', () => {
  queueCases(() => new MemoryWebhookQueue());
});

describe('RedisWebhookQueue', () => {
  const prefix = uniquePrefix('webhook-queue');
  const redis = new Redis(testRedisUrl());
  let n = 0;
  afterAll(async () => {
    await deleteKeys(redis, prefix);
    redis.disconnect();
  });
  queueCases(() => new RedisWebhookQueue(redis, `${prefix}${++n}:`, `${prefix}${n}:events`, 3_600_000));

  it('one intake at a time: a second instance gets the lease only after it ran out, and a fenced-off holder writes nothing', async () => {
    const q = new RedisWebhookQueue(redis, `${prefix}lease:`, `${prefix}lease:events`, 3_600_000);
    expect(await q.holdIntake('a', T0, 300)).toBe(true);
    expect(await q.holdIntake('b', T0, 300)).toBe(false);
    expect(await q.holdIntake('a', T0, 300)).toBe(true);
    await new Promise((r) => setTimeout(r, 400));
    expect(await q.holdIntake('b', T0, 5_000)).toBe(true);
    expect(await q.enqueue('a', '9-0', [ev('d:a', T0)], T0)).toEqual({ held: false });
    expect(await q.cursor()).toBe('0-0');
    expect((await q.claim('x:1', T0, 10, T0 + LEASE)).claims).toEqual([]);
  });

  it("starts a URL's cursor at the log's newest event, atomically", async () => {
    const events = `${prefix}start:events`;
    await redis.xadd(events, '5-1', 'type', 'x');
    await redis.xadd(events, '9-3', 'type', 'x');
    const q = new RedisWebhookQueue(redis, `${prefix}start:`, events, 3_600_000);
    expect(await q.cursor()).toBe('9-3');
    await redis.xadd(events, '12-0', 'type', 'x');
    expect(await q.cursor()).toBe('9-3'); // kept: the event after it is still to be queued
  });

  it('leaves no key without a TTL but the one that marks a 410 until the next start', async () => {
    const base = `${prefix}ttl:`;
    const q = new RedisWebhookQueue(redis, base, `${base}events`, 3_600_000);
    await q.holdIntake('me', T0, 5_000);
    await q.cursor();
    await q.enqueue('me', '2-0', [ev('d:a', T0), ev('d:b', T0, 1)], T0);
    const [a, b] = (await q.claim('me:1', T0, 10, T0 + LEASE)).claims;
    await q.settle([{ key: a!.key, token: a!.token, id: a!.id, outcome: { kind: 'retry', at: T0 + 1, attempts: 1 } }], T0);
    await q.renew([b!], T0 + LEASE);
    await q.setDisabled(true);
    expect(await keysWithoutTtl(redis, base, ['disabled'])).toBe(0);
  });
});

describe('MemoryWebhookQueue bound', () => {
  it('refuses events past its bound, and has room again once events leave', async () => {
    const q = new MemoryWebhookQueue(() => '0-0', 2);
    expect(await q.enqueue('me', '3-0', [ev('d:a', T0, 0), ev('d:b', T0, 1), ev('d:c', T0, 2)], T0)).toEqual({ held: true, refused: 1 });
    const [a] = (await q.claim('me:1', T0, 1, T0 + LEASE)).claims;
    await q.settle([{ key: a!.key, token: a!.token, id: a!.id, outcome: { kind: 'done' } }], T0);
    expect(await q.enqueue('me', '4-0', [ev('d:c', T0, 3)], T0)).toEqual({ held: true, refused: 0 });
    expect(await q.backlog()).toEqual({ oldest: T0, keys: 2 });
  });
});
