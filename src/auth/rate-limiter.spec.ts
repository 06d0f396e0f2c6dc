import Redis from 'ioredis';
import { StoreUnavailableError } from '../common/store-unavailable.error';
import { createClient } from '../redis/redis-connection';
import { FakeClock } from '../../test/support/fake-clock';
import { deleteKeys, redisCommandsDuring, testRedisUrl, uniquePrefix } from '../../test/support/redis';
import { MemoryRateLimiter } from './memory-rate-limiter';
import { RateLimiter, RateRule } from './rate-limiter';
import { KeyLayout } from '../redis/partitions';
import { RedisRateLimiter } from './redis-rate-limiter';

const MINUTE = 60_000;
/** A moment where a one-minute window starts, so "half-way through the window" is exact. */
const WINDOW_START = 1_700_000_040_000;
const rule: RateRule = { name: 'api-key', limit: 10, windowMs: MINUTE };

/** The same behaviour, case by case, for both implementations. */
function rateLimiterCases(make: () => RateLimiter) {
  let limiter: RateLimiter;
  let clock: FakeClock;
  const hits = async (n: number, key = 'k1', r = rule) => {
    const allowed: boolean[] = [];
    for (let i = 0; i < n; i++) allowed.push((await limiter.hit(r, key, clock.now())).allowed);
    return allowed;
  };

  beforeEach(() => {
    limiter = make();
    clock = new FakeClock(WINDOW_START);
  });

  it('allows `limit` hits per window and refuses the rest, per key and per rule', async () => {
    expect(await hits(12)).toEqual([...Array<boolean>(10).fill(true), false, false]);
    expect(await hits(1, 'k2')).toEqual([true]);
    expect(await hits(1, 'k1', { ...rule, name: 'other' })).toEqual([true]);
  });

  it('slides: the previous window weighs by the share of it still inside, then nothing', async () => {
    await hits(10);
    clock.advance(MINUTE); // next window: the previous 10 still weigh fully at its start
    expect(await hits(1)).toEqual([false]);
    clock.advance(MINUTE / 2); // half of them slid out: 5 more fit
    expect(await hits(6)).toEqual([true, true, true, true, true, false]);
    clock.advance(2 * MINUTE); // both windows passed: a fresh budget
    expect(await hits(10)).toEqual(Array<boolean>(10).fill(true));
  });

  it('says when the next hit fits, to the millisecond', async () => {
    clock.advance(MINUTE - 6_000);
    await hits(10); // all at 54 s into the window
    clock.advance(6_000);
    // Next window: 10 × (1 - e) + 0 + 1 <= 10 once e >= 0.1, i.e. 6 s in.
    const refused = await limiter.hit(rule, 'k1', clock.now());
    expect(refused).toEqual({ allowed: false, retryAfterMs: 6_000 });
    clock.advance(refused.retryAfterMs - 1);
    expect((await limiter.hit(rule, 'k1', clock.now())).allowed).toBe(false);
    clock.advance(1);
    expect((await limiter.hit(rule, 'k1', clock.now())).allowed).toBe(true);
  });

  it('admits: reads the gate without counting it, then counts the other rule; a gate refusal counts nothing', async () => {
    const gate: RateRule = { name: 'auth-failures', limit: 3, windowMs: MINUTE };
    for (let i = 0; i < 9; i++) expect(await limiter.admit(gate, 'addr', rule, 'k1', clock.now())).toEqual({ allowed: true, retryAfterMs: 0 });
    // The gate was only read: its budget is whole.
    expect(await hits(3, 'addr', gate)).toEqual([true, true, true]);
    // Now the gate refuses, with its own retry time, and the key's 10th hit is not spent.
    clock.advance(MINUTE / 2);
    const blocked = await limiter.admit(gate, 'addr', rule, 'k1', clock.now());
    expect(blocked).toEqual({ allowed: false, retryAfterMs: expect.any(Number), refusedBy: 'gate' });
    expect(blocked.retryAfterMs).toBe((await limiter.check(gate, 'addr', clock.now())).retryAfterMs);
    expect(await limiter.admit(gate, 'other-addr', rule, 'k1', clock.now())).toEqual({ allowed: true, retryAfterMs: 0 });
    const counted = await limiter.admit(gate, 'other-addr', rule, 'k1', clock.now());
    expect(counted).toEqual({ allowed: false, retryAfterMs: expect.any(Number), refusedBy: 'counted' });
    expect(counted.retryAfterMs).toBe((await limiter.check(rule, 'k1', clock.now())).retryAfterMs);
  });

  it('says when the next hit fits while the previous window still weighs', async () => {
    await hits(10);
    clock.advance(MINUTE + MINUTE / 2);
    await hits(5); // 10 × 0.5 + 5: full again
    const refused = await limiter.check(rule, 'k1', clock.now());
    expect(refused.allowed).toBe(false);
    // 10 × (1 - e) + 5 + 1 <= 10 once e >= 0.6: 6 s after now (which is at e = 0.5).
    expect(refused.retryAfterMs).toBe(6_000);
  });

  it('counts nothing on check, nor for a refused hit (hammering does not prolong the block)', async () => {
    for (let i = 0; i < 5; i++) expect(await limiter.check(rule, 'k1', clock.now())).toEqual({ allowed: true, retryAfterMs: 0 });
    await hits(10);
    expect((await limiter.check(rule, 'k1', clock.now())).allowed).toBe(false);
    await hits(100);
    clock.advance(2 * MINUTE);
    expect(await hits(10)).toEqual(Array<boolean>(10).fill(true));
  });

  it('lets a limit of 1 through once per window', async () => {
    const one = { ...rule, name: 'one', limit: 1 };
    expect(await hits(2, 'k1', one)).toEqual([true, false]);
    clock.advance(MINUTE); // the previous hit weighs fully until it has slid out completely
    expect((await limiter.hit(one, 'k1', clock.now())).retryAfterMs).toBe(MINUTE);
    clock.advance(MINUTE);
    expect(await hits(1, 'k1', one)).toEqual([true]);
  });

  it('costs the same however many hits a window holds', async () => {
    const big = { ...rule, name: 'big', limit: 1_000_000 };
    for (let batch = 0; batch < 10; batch++) {
      await Promise.all(Array.from({ length: 1_000 }, () => limiter.hit(big, 'k', clock.now())));
    }
    expect((await limiter.check(big, 'k', clock.now())).allowed).toBe(true);
    expect(await limiter.hit({ ...big, limit: 10_001 }, 'k', clock.now())).toEqual({ allowed: true, retryAfterMs: 0 });
    expect((await limiter.check({ ...big, limit: 10_001 }, 'k', clock.now())).allowed).toBe(false);
  });
}

describe('MemoryRateLimiter', () => {
  rateLimiterCases(() => new MemoryRateLimiter());

  it('forgets keys whose windows passed, and holds at most its bound', async () => {
    const clock = new FakeClock(WINDOW_START);
    const limiter = new MemoryRateLimiter(1_000);
    for (let i = 0; i < 5_000; i++) await limiter.hit(rule, `addr-${i}`, clock.now());
    expect(limiter.tracked(rule)).toBe(1_000);
    clock.advance(2 * MINUTE);
    await limiter.hit(rule, 'late', clock.now());
    expect(limiter.tracked(rule)).toBe(1);
  });
});

describe('RedisRateLimiter (real Redis)', () => {
  const redis = new Redis(testRedisUrl(), { enableAutoPipelining: true });
  const prefix = uniquePrefix('ratelimit');
  afterEach(() => deleteKeys(redis, prefix));
  afterAll(() => redis.quit());

  rateLimiterCases(() => new RedisRateLimiter(redis, prefix));

  describe('with 1024 partitions (the Cluster layout on one Redis)', () => {
    rateLimiterCases(() => new RedisRateLimiter(redis, new KeyLayout(prefix, true)));
  });

  it('shares the budget between instances, exactly, when they race', async () => {
    const others = [0, 1, 2].map(() => redis.duplicate());
    try {
      const limiters = others.map((c) => new RedisRateLimiter(c, prefix));
      const now = WINDOW_START;
      const results = await Promise.all(Array.from({ length: 60 }, (_, i) => limiters.at(i % 3)!.hit(rule, 'shared', now)));
      expect(results.filter((r) => r.allowed)).toHaveLength(rule.limit);
    } finally {
      others.forEach((c) => c.disconnect());
    }
  });

  it('keeps two counters per key that expire when they stop counting', async () => {
    const limiter = new RedisRateLimiter(redis, prefix);
    const now = Date.now();
    const window = Math.floor(now / MINUTE);
    await limiter.hit(rule, 'k1', now);
    await limiter.hit(rule, 'k1', now);
    expect(await redis.get(`${prefix}ratelimit:api-key:k1:${window}`)).toBe('2');
    const pttl = await redis.pttl(`${prefix}ratelimit:api-key:k1:${window}`);
    // The counter matters until the window after it ends, and no longer.
    expect(pttl).toBeGreaterThan((window + 2) * MINUTE - now - 1_000);
    expect(pttl).toBeLessThanOrEqual((window + 2) * MINUTE - now);
    await limiter.check(rule, 'k2', now);
    expect(await redis.keys(`${prefix}*`)).toHaveLength(1); // a check writes nothing
  });

  /**
   * The names of the commands on this suite's keys that `act` caused. Script calls are counted as
   * EVALSHAs: an EVAL after one is its retry on NOSCRIPT (lua-script.spec.ts flushes the script
   * cache of the Redis the suites share), the same call.
   */
  const commandsOf = async (act: () => Promise<unknown>): Promise<string[]> => (await redisCommandsDuring(redis, prefix, act)).map(([name]) => name!);

  it('costs one round trip per hit (one EVALSHA)', async () => {
    const limiter = new RedisRateLimiter(redis, prefix);
    await limiter.hit(rule, 'k1', Date.now()); // loads the script
    const commands = await commandsOf(() => limiter.hit(rule, 'k1', Date.now()));
    expect(commands.filter((c) => c === 'evalsha')).toHaveLength(1);
    expect(commands.filter((c) => !['evalsha', 'eval', 'mget', 'incrby', 'pexpire', 'exists'].includes(c))).toEqual([]);
    // Both windows' counters in one read.
    expect(commands.filter((c) => c === 'mget')).toHaveLength(1);
  });

  it('admits with one script call when both rules share a partition (one Redis), two on the Cluster layout', async () => {
    const gate = { name: 'auth-failures', limit: 5, windowMs: MINUTE };
    const one = new RedisRateLimiter(redis, prefix);
    // One instant for both: a window boundary between them would add the new window's PEXPIRE.
    const now = Date.now();
    await one.admit(gate, 'addr', rule, 'k1', now); // loads the script
    const single = await commandsOf(() => one.admit(gate, 'addr', rule, 'k1', now));
    expect(single.filter((c) => c === 'evalsha')).toHaveLength(1);
    // The four counters (two rules, two windows each) in one read, then the counted rule's INCRBY.
    expect(single.filter((c) => !['evalsha', 'eval', 'exists'].includes(c))).toEqual(['mget', 'incrby']);
    // On 1024 partitions these two keys fall in different ones: one call per rule, sent together.
    const layout = new KeyLayout(prefix, true);
    expect(layout.partitionOf('auth-failures:addr')).not.toBe(layout.partitionOf('api-key:k1'));
    const sharded = new RedisRateLimiter(redis, layout);
    await sharded.admit(gate, 'addr', rule, 'k1', Date.now());
    const two = await commandsOf(() => sharded.admit(gate, 'addr', rule, 'k1', Date.now()));
    expect(two.filter((c) => c === 'evalsha')).toHaveLength(2);
  });

  it('fails with StoreUnavailableError when Redis cannot be reached (never "unlimited")', async () => {
    const down = createClient({ mode: 'url', url: 'redis://127.0.0.1:1' }, 200, true);
    down.on('error', () => {});
    try {
      const limiter = new RedisRateLimiter(down, prefix);
      await expect(limiter.hit(rule, 'k1', Date.now())).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(limiter.check(rule, 'k1', Date.now())).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      down.disconnect();
    }
  });
});
