import { FakeClock } from '../../test/support/fake-clock';
import { TokenBucket } from './token-bucket';

describe('TokenBucket', () => {
  it('allows a burst of twice the rate, then refills with time', () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(5, clock);
    const burst = Array.from({ length: 12 }, () => bucket.take());
    expect(burst.filter(Boolean)).toHaveLength(10);
    clock.advance(200);
    expect(bucket.take()).toBe(true);
    expect(bucket.take()).toBe(false);
    expect(bucket.msUntilNext()).toBe(200);
    clock.advance(150);
    expect(bucket.msUntilNext()).toBe(50);
    clock.advance(60_000);
    expect(bucket.msUntilNext()).toBe(0);
    expect(Array.from({ length: 11 }, () => bucket.take()).filter(Boolean)).toHaveLength(10);
  });

  it('makes refused takes owe tokens, at most one burst deep', () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(5, clock);
    for (let i = 0; i < 10; i++) expect(bucket.takeOrOwe()).toBe(true);
    for (let i = 0; i < 100; i++) expect(bucket.takeOrOwe()).toBe(false);
    expect(bucket.msUntilNext()).toBe(2_200); // 10 owed + 1: 11 tokens at 5 per second
    clock.advance(2_200);
    expect(bucket.takeOrOwe()).toBe(true);
    expect(bucket.takeOrOwe()).toBe(false);
  });
});
