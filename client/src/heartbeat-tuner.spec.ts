import fc from 'fast-check';
import { GROWTH_FACTOR, HeartbeatTuner, REPROBE_AFTER_MS, SUCCESSES_TO_GROW } from './heartbeat-tuner';
import { memoryStorage } from './storage';

const bounds = { interval: 20_000, min: 5_000, max: 300_000 };

describe('HeartbeatTuner (smart heartbeat)', () => {
  let now = 0;
  const clock = () => now;
  const succeed = (t: HeartbeatTuner, times = SUCCESSES_TO_GROW) => {
    for (let i = 0; i < times; i++) t.onSuccess(t.interval);
  };

  beforeEach(() => (now = 1_000_000));

  it('starts at the server interval, or at its recommendation for the network', async () => {
    expect(await new HeartbeatTuner(memoryStorage(), clock).start('wifi:a', bounds)).toBe(20_000);
    expect(await new HeartbeatTuner(memoryStorage(), clock).start('wifi:a', { ...bounds, recommended: 90_000 })).toBe(90_000);
    expect(await new HeartbeatTuner(memoryStorage(), clock).start('wifi:a', { ...bounds, recommended: 1 })).toBe(5_000);
  });

  it('takes the recommendation as known good: stable, no growth until the re-probe period', async () => {
    const t = new HeartbeatTuner(memoryStorage(), clock);
    await t.start('wifi:a', { ...bounds, recommended: 90_000 });
    expect(t.snapshot).toMatchObject({ interval: 90_000, lastGood: 90_000, stable: true });
    succeed(t, 20);
    expect(t.interval).toBe(90_000);
    now += REPROBE_AFTER_MS;
    t.onSuccess(t.interval);
    expect(t.interval).toBe(90_000 * GROWTH_FACTOR); // nothing failed yet: one step up
  });

  it('halves and relearns when the recommended value itself fails', async () => {
    const t = new HeartbeatTuner(memoryStorage(), clock);
    await t.start('wifi:a', { ...bounds, recommended: 90_000 });
    t.onFailure();
    expect(t.snapshot).toMatchObject({ interval: 45_000, lastGood: undefined, failedAt: 90_000, stable: false });
    succeed(t);
    expect(t.interval).toBe(67_500); // the midpoint of 45 s (good) and 90 s (failed)
  });

  it('grows in steps while beats succeed, never past max', async () => {
    const t = new HeartbeatTuner(memoryStorage(), clock);
    await t.start('wifi:a', bounds);
    succeed(t, SUCCESSES_TO_GROW - 1);
    expect(t.interval).toBe(20_000);
    succeed(t, 1);
    expect(t.interval).toBe(20_000 * GROWTH_FACTOR);
    for (let i = 0; i < 20; i++) succeed(t);
    expect(t.interval).toBe(300_000);
  });

  it('brackets the timeout after a failure, settles at the last good value, and re-probes after a long stable period', async () => {
    const t = new HeartbeatTuner(memoryStorage(), clock);
    await t.start('cell:x', bounds);
    succeed(t); // 20 s good -> 30 s
    succeed(t); // 30 s good -> 45 s
    expect(t.interval).toBe(45_000);
    t.onFailure(); // the link died idling 45 s: the timeout is between 30 and 45 s
    expect(t.snapshot).toMatchObject({ interval: 37_500, lastGood: 30_000, failedAt: 45_000, stable: false });
    succeed(t, SUCCESSES_TO_GROW - 1); // two beats at 37.5 s are not a run: not known good yet
    t.onFailure(); // 37.5 s failed too: 30 s is 80 % of it
    expect(t.snapshot).toMatchObject({ interval: 30_000, lastGood: 30_000, failedAt: 37_500, stable: true });
    succeed(t, 10);
    expect(t.interval).toBe(30_000); // stable: no growth
    now += REPROBE_AFTER_MS;
    t.onSuccess(t.interval);
    expect(t.interval).toBe(37_500); // the value that failed, once more
    expect(t.snapshot.stable).toBe(false);
    t.onFailure();
    expect(t.snapshot).toMatchObject({ interval: 30_000, stable: true }); // still failing: back at once
    now += REPROBE_AFTER_MS;
    t.onSuccess(t.interval);
    expect(t.interval).toBe(37_500);
    succeed(t); // 37.5 s holds now (a new router): growth resumes
    expect(t.interval).toBe(Math.round(37_500 * GROWTH_FACTOR));
  });

  it('settles on a midpoint that holds', async () => {
    const t = new HeartbeatTuner(memoryStorage(), clock);
    await t.start('cell:x', bounds);
    succeed(t);
    succeed(t);
    t.onFailure(); // 45 s failed
    succeed(t); // 37.5 s holds: 37.5 >= 0.8 x 45
    expect(t.snapshot).toMatchObject({ interval: 37_500, lastGood: 37_500, failedAt: 45_000, stable: true });
  });

  it('halves when even the last good value fails (the network got worse)', async () => {
    const t = new HeartbeatTuner(memoryStorage(), clock);
    await t.start('cell:x', bounds);
    t.onFailure();
    expect(t.interval).toBe(10_000);
    t.onFailure();
    expect(t.interval).toBe(5_000);
    t.onFailure();
    expect(t.interval).toBe(5_000); // never below min
    expect(t.snapshot.stable).toBe(false); // relearning
  });

  it('keeps what it learned per network in the storage', async () => {
    const storage = memoryStorage();
    const first = new HeartbeatTuner(storage, clock);
    await first.start('wifi:home', bounds);
    succeed(first);
    succeed(first);
    first.onFailure(); // wifi:home: 45 s failed
    succeed(first); // 37.5 s holds: stable there
    await first.start('cell:acme', bounds);
    expect(first.interval).toBe(20_000); // another network starts fresh

    const later = new HeartbeatTuner(storage, clock);
    expect(await later.start('wifi:home', { ...bounds, recommended: 20_000 })).toBe(37_500); // its own learning wins
    expect(later.snapshot).toMatchObject({ stable: true, lastGood: 37_500, failedAt: 45_000 });
    expect(await later.start('wifi:home', { ...bounds, max: 25_000 })).toBe(25_000); // new server bounds win
  });

  it('uses the minimum in the foreground without disturbing what it learned', async () => {
    const t = new HeartbeatTuner(memoryStorage(), clock);
    await t.start('wifi:a', bounds);
    succeed(t);
    t.setForeground(true);
    expect(t.interval).toBe(5_000);
    succeed(t, 10);
    t.onFailure();
    t.setForeground(false);
    expect(t.interval).toBe(30_000);
  });

  it('survives a broken storage', async () => {
    const t = new HeartbeatTuner({ get: () => '{not json', set: () => Promise.reject(new Error('full')) }, clock);
    expect(await t.start('wifi:a', bounds)).toBe(20_000);
    expect(() => succeed(t)).not.toThrow();
  });
});

/**
 * A NAT that drops mappings idle for T or longer, as the tuner sees it: no real time, only idle
 * gaps. A beat at interval i is an idle gap of i; it survives if i < T, else the link is lost.
 */
async function simulateNat(T: number, start: number, limits: { min: number; max: number; recommended?: number }, until: number | 'stable' = 'stable') {
  let now = 0;
  const t = new HeartbeatTuner(memoryStorage(), () => now);
  await t.start('nat', { interval: start, ...limits });
  const trail: string[] = [];
  const lostAt: number[] = [];
  for (let beats = 0; until === 'stable' ? !t.snapshot.stable && beats < 10_000 : now < until; beats++) {
    const i = t.interval;
    now += i;
    if (trail.at(-1)?.replace(' (lost)', '') !== String(i / 1000)) trail.push(String(i / 1000));
    if (i < T) t.onSuccess(i);
    else {
      lostAt.push(now);
      trail[trail.length - 1] += ' (lost)';
      t.onFailure();
    }
  }
  return { trail, lostAt, elapsed: now, settled: t.snapshot.lastGood ?? t.interval, stable: t.snapshot.stable, interval: t.interval };
}

describe('HeartbeatTuner behind a simulated NAT (idle timeout T)', () => {
  const limits = { min: 1_000, max: 300_000 };

  it('climbs 4, 6, 9, 13.5 (lost) and settles at 11.25 s for T = 12 s', async () => {
    const run = await simulateNat(12_000, 4_000, { min: 1_000, max: 30_000 });
    expect(run.trail).toEqual(['4', '6', '9', '13.5 (lost)', '11.25']);
    expect(run).toMatchObject({ settled: 11_250, stable: true, lostAt: [expect.any(Number)] });
  });

  it.each([
    [12_000, 4_000, 30_000],
    [12_000, 1_000, 30_000],
    [30_000, 5_000, 300_000],
    [45_000, 20_000, 300_000],
    [120_000, 10_000, 300_000],
    [290_000, 60_000, 300_000],
  ])('T = %i ms from %i ms (max %i): settles within [0.7 T, T) losing at most 3 links', async (T, start, max) => {
    const run = await simulateNat(T, start, { min: 1_000, max });
    expect(run.stable).toBe(true);
    expect(run.settled).toBeGreaterThanOrEqual(0.7 * T);
    expect(run.settled).toBeLessThan(T);
    expect(run.lostAt.length).toBeLessThanOrEqual(3);
  });

  it('holds for any T and start below it (property), and re-probing costs at most one link per period', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1_100, max: 290_000 }), fc.double({ min: 0, max: 1, noNaN: true }), async (T, f) => {
        const start = Math.floor(limits.min + f * (T - 1 - limits.min));
        const learning = await simulateNat(T, start, limits);
        expect(learning.stable).toBe(true);
        expect(learning.settled).toBeGreaterThanOrEqual(0.7 * T);
        expect(learning.settled).toBeLessThan(T);
        expect(learning.lostAt.length).toBeLessThanOrEqual(2); // growth overshoots by 1.5x at most: one midpoint settles it
        const hours = await simulateNat(T, start, limits, learning.elapsed + 4 * 3_600_000);
        expect(hours.lostAt.length).toBeLessThanOrEqual(learning.lostAt.length + (4 * 3_600_000) / REPROBE_AFTER_MS);
        expect(hours.settled).toBeGreaterThanOrEqual(0.7 * T);
      }),
      { numRuns: 150 },
    );
  });

  it('a new device given a recommendation within [0.7 T, T) loses no link in its first 100 s', async () => {
    for (const T of [6_000, 12_000, 30_000, 120_000]) {
      for (const share of [0.7, 0.8, 0.99]) {
        const run = await simulateNat(T, 2_000, { ...limits, recommended: Math.round(share * T) }, 100_000);
        expect(run.lostAt).toEqual([]);
      }
    }
  });
});
