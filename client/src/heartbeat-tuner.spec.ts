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

  it('backs off to the last good value on failure, stays there, and re-probes after a long stable period', async () => {
    const t = new HeartbeatTuner(memoryStorage(), clock);
    await t.start('cell:x', bounds);
    succeed(t); // 20 s good -> 30 s
    succeed(t); // 30 s good -> 45 s
    expect(t.interval).toBe(45_000);
    t.onFailure(); // the link died idling 45 s
    expect(t.interval).toBe(30_000);
    expect(t.snapshot).toMatchObject({ stable: true, lastGood: 30_000 });
    succeed(t, 10);
    expect(t.interval).toBe(30_000); // stable: no growth
    now += REPROBE_AFTER_MS;
    t.onSuccess(t.interval);
    expect(t.interval).toBe(45_000); // one step up again
    expect(t.snapshot.stable).toBe(false);
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
  });

  it('keeps what it learned per network in the storage', async () => {
    const storage = memoryStorage();
    const first = new HeartbeatTuner(storage, clock);
    await first.start('wifi:home', bounds);
    succeed(first);
    succeed(first);
    first.onFailure(); // wifi:home: stable at 30 s
    await first.start('cell:acme', bounds);
    expect(first.interval).toBe(20_000); // another network starts fresh

    const later = new HeartbeatTuner(storage, clock);
    expect(await later.start('wifi:home', bounds)).toBe(30_000);
    expect(later.snapshot).toMatchObject({ stable: true, lastGood: 30_000 });
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
