import fc from 'fast-check';
import { parseRetryAfter } from '../../common/retry-after';
import { afterFailure, MAX_RETRY_DELAY_MS, MIN_RETRY_DELAY_MS, retryDelay } from './retry-policy';

describe('webhook retry policy', () => {
  it('stays between 1 s and 5 min, under a ceiling that doubles per attempt', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempts, random) => {
        const delay = retryDelay(attempts, random);
        expect(delay).toBeGreaterThanOrEqual(MIN_RETRY_DELAY_MS);
        expect(delay).toBeLessThanOrEqual(Math.min(MAX_RETRY_DELAY_MS, MIN_RETRY_DELAY_MS * 2 ** attempts));
      }),
    );
    expect(retryDelay(1, 0)).toBe(1_000);
    expect(retryDelay(1, 0.999_999)).toBe(2_000);
    expect(retryDelay(3, 0.5)).toBe(4_500);
    expect(retryDelay(30, 0.999_999)).toBe(MAX_RETRY_DELAY_MS);
  });

  it("honours a receiver's Retry-After within the same bounds", () => {
    expect(retryDelay(1, 0.5, 30_000)).toBe(30_000);
    expect(retryDelay(1, 0.5, 0)).toBe(MIN_RETRY_DELAY_MS);
    expect(retryDelay(1, 0.5, 3_600_000)).toBe(MAX_RETRY_DELAY_MS);
    expect(parseRetryAfter('7', 0)).toBe(7_000);
    expect(parseRetryAfter(new Date(60_000).toUTCString(), 0)).toBe(60_000);
    expect(parseRetryAfter('soon', 0)).toBeUndefined();
    expect(parseRetryAfter(undefined, 0)).toBeUndefined();
  });

  it('retries until the window after the event ends, the last attempt at its end, then drops', () => {
    const window = 24 * 3_600_000;
    expect(afterFailure({ attempts: 1, eventTime: 0 }, 10, window, 0)).toEqual({ kind: 'retry', at: 1_010 });
    expect(afterFailure({ attempts: 20, eventTime: 0 }, window - 1_000, window, 0.9)).toEqual({ kind: 'retry', at: window });
    expect(afterFailure({ attempts: 21, eventTime: 0 }, window, window, 0.5)).toEqual({ kind: 'drop' });
    expect(afterFailure({ attempts: 2, eventTime: 0, retryAfterMs: 90_000 }, 5, window, 0.5)).toEqual({ kind: 'retry', at: 90_005 });
  });
});
