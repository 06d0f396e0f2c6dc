import { NETWORK_KEY } from '../common/patterns';
import { bucketOf, isStableRun, recommendInterval, STABLE_BEATS, statsOf } from './network-intervals';

describe('network interval learning', () => {
  it('recommends the lower quartile of stable intervals', () => {
    expect(recommendInterval({})).toBeUndefined();
    expect(recommendInterval({ 60000: 1 })).toBe(60000);
    // 8 samples: 2 at 30 s, 2 at 60 s, 4 at 120 s: a quarter is reached at 30 s.
    expect(recommendInterval({ 30000: 2, 60000: 2, 120000: 4 })).toBe(30000);
    expect(recommendInterval({ 30000: 1, 60000: 3, 120000: 4 })).toBe(60000);
    expect(statsOf('wifi:home', { 30000: 1, 60000: 3 })).toEqual({ network: 'wifi:home', samples: 4, recommendedInterval: 30000 });
  });

  it('buckets by whole seconds and accepts only safe network keys', () => {
    expect(bucketOf(25_999)).toBe(25_000);
    expect(NETWORK_KEY.test('wifi:Home-5G')).toBe(true);
    expect(NETWORK_KEY.test('cell:T-Mobile/US')).toBe(true);
    expect(NETWORK_KEY.test('has space')).toBe(false);
    expect(NETWORK_KEY.test('x'.repeat(65))).toBe(false);
    expect(NETWORK_KEY.test(3)).toBe(false);
  });

  it('takes a run of STABLE_BEATS as a sample only when it really spanned its intervals on the gateway clock', () => {
    const span = (STABLE_BEATS - 1) * 10_000;
    expect(isStableRun(STABLE_BEATS, 0, span, 10_000)).toBe(true);
    expect(isStableRun(STABLE_BEATS, 0, span * 0.9, 10_000)).toBe(true); // jitter tolerated
    expect(isStableRun(STABLE_BEATS, 0, span * 0.9 - 1, 10_000)).toBe(false);
    expect(isStableRun(STABLE_BEATS, 0, 300, 10_000)).toBe(false); // beats sent back to back
    expect(isStableRun(STABLE_BEATS - 1, 0, span, 10_000)).toBe(false);
    expect(isStableRun(STABLE_BEATS + 1, 0, span * 2, 10_000)).toBe(false); // one sample per run
  });
});
