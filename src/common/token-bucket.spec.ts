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

});
