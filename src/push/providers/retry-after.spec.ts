import { parseRetryAfter } from '../../common/retry-after';
import { backoffMs } from './retry-after';
import { ConcurrencyLimit } from './concurrency-limit';

describe('Retry-After and backoff', () => {
  const now = Date.parse('2026-11-29T10:00:00Z');

  it('reads delay-seconds and HTTP-dates, and nothing else', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(['3'], now)).toBe(3_000);
    expect(parseRetryAfter('Sun, 29 Nov 2026 10:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Sun, 29 Nov 2026 09:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('-5', now)).toBeUndefined();
    expect(parseRetryAfter('1.5', now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it('doubles per failed attempt with jitter between half and all of the step', () => {
    expect([1, 2, 3, 4].map((n) => backoffMs(n, 1_000, () => 0))).toEqual([500, 1_000, 2_000, 4_000]);
    expect([1, 2, 3, 4].map((n) => backoffMs(n, 1_000, () => 0.999_999))).toEqual([1_000, 2_000, 4_000, 8_000]);
  });
});

describe('ConcurrencyLimit', () => {
  it('runs at most `limit` tasks at once, in arrival order, and refuses past the waiting bound', async () => {
    const limit = new ConcurrencyLimit(2, 2);
    const gates: (() => void)[] = [];
    const started: number[] = [];
    const task = (i: number) => () => {
      started.push(i);
      return new Promise<number>((resolve) => gates.push(() => resolve(i)));
    };
    const runs = [1, 2, 3, 4].map((i) => limit.run(task(i)));
    expect(await limit.run(task(5))).toBeUndefined();
    expect(started).toEqual([1, 2]);
    expect(limit.queued).toBe(2);
    gates.shift()?.();
    await runs[0];
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([1, 2, 3]);
    expect(limit.inFlight).toBe(2);
    while (gates.length || started.length < 4) {
      gates.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    expect((await Promise.all(runs)).map((r) => r?.value)).toEqual([1, 2, 3, 4]);
    expect(limit.inFlight).toBe(0);
  });
});
