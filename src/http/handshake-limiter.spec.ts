import { FakeClock } from '../../test/support/fake-clock';
import { HandshakeLimiter } from './handshake-limiter';

describe('HandshakeLimiter', () => {
  it('allows a burst of twice the rate per address, then the rate', () => {
    const clock = new FakeClock();
    const limiter = new HandshakeLimiter(2, clock);
    expect([1, 2, 3, 4, 5].map(() => limiter.take('a'))).toEqual([true, true, true, true, false]);
    expect(limiter.take('b')).toBe(true); // another address has its own budget
    clock.advance(499);
    expect(limiter.take('a')).toBe(false);
    clock.advance(1);
    expect(limiter.take('a')).toBe(true);
    expect(limiter.take('a')).toBe(false);
  });

  it('forgets an address once its budget has refilled, and never tracks more than its ceiling', () => {
    const clock = new FakeClock();
    const limiter = new HandshakeLimiter(5, clock, 1_000);
    for (let i = 0; i < 500; i++) limiter.take(`10.0.${i >> 8}.${i & 255}`);
    expect(limiter.size).toBe(500);
    clock.advance(2_000); // a full refill: the same as never seen
    limiter.take('192.0.2.1');
    expect(limiter.size).toBe(1);
    for (let i = 0; i < 5_000; i++) limiter.take(`addr-${i}`);
    expect(limiter.size).toBe(1_000);
  });
});
