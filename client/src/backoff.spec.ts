import { Backoff } from './backoff';
import { DedupeWindow } from './dedupe';

describe('Backoff (exponential, full jitter)', () => {
  it('draws from [0, base * 2^attempt), capped, and resets', () => {
    const top = new Backoff(500, 30_000, () => 0.999_999);
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9].map(() => top.next())).toEqual([499, 999, 1999, 3999, 7999, 15999, 29999, 29999, 29999]);
    top.reset();
    expect(top.next()).toBe(499);
    const low = new Backoff(500, 30_000, () => 0);
    expect(low.next()).toBe(0);
  });

  it('spreads clients out: delays are not all equal', () => {
    const delays = Array.from({ length: 50 }, () => new Backoff().next());
    expect(new Set(delays).size).toBeGreaterThan(10);
    expect(Math.max(...delays)).toBeLessThan(500);
  });
});

describe('DedupeWindow', () => {
  it('reports each id once within a bounded window', () => {
    const w = new DedupeWindow(3);
    expect(['a', 'b', 'a', 'c', 'd'].map((id) => w.firstTime(id))).toEqual([true, true, false, true, true]);
    expect(w.firstTime('a')).toBe(true); // evicted: the window is bounded
    expect(w.firstTime('d')).toBe(false);
  });
});
