import { FakeClock } from '../../test/support/fake-clock';
import { SlidingWindowStorage } from './sliding-window.storage';

describe('SlidingWindowStorage (per-key rate limit)', () => {
  it('allows `limit` hits per window, blocks the rest with a Retry-After, and slides', async () => {
    const clock = new FakeClock(0);
    const storage = new SlidingWindowStorage(clock);
    const hit = () => storage.increment('key-a', 60_000, 10, 60_000, 'default');
    for (let i = 0; i < 10; i++) expect((await hit()).isBlocked).toBe(false);
    const blocked = await hit();
    expect(blocked).toMatchObject({ isBlocked: true, totalHits: 11 });
    expect(blocked.timeToBlockExpire).toBeGreaterThan(0);
    expect((await storage.increment('key-b', 60_000, 10, 60_000, 'default')).isBlocked).toBe(false); // per key

    clock.advance(60_000); // next window: the previous 10 still weigh fully at its start
    expect((await hit()).isBlocked).toBe(true);
    clock.advance(30_000); // half of them have slid out: 5 more fit
    const results = [];
    for (let i = 0; i < 6; i++) results.push((await hit()).isBlocked);
    expect(results).toEqual([false, false, false, false, false, true]);
    clock.advance(120_000); // long idle: a fresh budget
    expect((await hit()).isBlocked).toBe(false);
  });

  it('costs the same however many hits a window holds', async () => {
    const storage = new SlidingWindowStorage(new FakeClock(0));
    for (let i = 0; i < 200_000; i++) await storage.increment('k', 60_000, 1_000_000, 60_000, 'default');
    expect((await storage.increment('k', 60_000, 1_000_000, 60_000, 'default')).totalHits).toBe(200_001);
  });
});
