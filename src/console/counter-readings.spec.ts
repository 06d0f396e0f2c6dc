import { CounterReading, pointsOf } from './counter-readings';

const reading = (at: number, fields: Partial<CounterReading> = {}): CounterReading => ({
  at,
  heartbeats: 0,
  pushesSent: 0,
  pushesAcked: 0,
  presenceExpired: 0,
  sweeps: 0,
  sweepSeconds: 0,
  connected: 0,
  ...fields,
});

describe('pointsOf', () => {
  it('turns cumulative counters into per-second rates over the time that really passed', () => {
    const points = pointsOf([
      reading(10_000, { heartbeats: 100, pushesSent: 4, pushesAcked: 3, sweeps: 10, sweepSeconds: 0.01, connected: 5 }),
      reading(12_000, { heartbeats: 130, pushesSent: 10, pushesAcked: 9, presenceExpired: 2, sweeps: 14, sweepSeconds: 0.018, connected: 3 }),
    ]);
    expect(points).toEqual([
      { at: 12_000, heartbeatsPerSecond: 15, pushesPerSecond: 3, acksPerSecond: 3, expired: 2, sweeps: 4, sweepMeanMs: 2, connected: 3 },
    ]);
  });

  it('has no sweep mean for an interval without sweeps, and no point for a clock that stood still', () => {
    const points = pointsOf([reading(1_000, { heartbeats: 1 }), reading(1_000, { heartbeats: 5 }), reading(2_000, { heartbeats: 7 })]);
    expect(points).toHaveLength(1);
    expect(points[0]).toMatchObject({ at: 2_000, heartbeatsPerSecond: 2, sweeps: 0 });
    expect(points[0]!.sweepMeanMs).toBeUndefined();
  });

  it('never charts a negative rate', () => {
    expect(pointsOf([reading(0, { pushesSent: 5 }), reading(1_000, { pushesSent: 2 })])[0]!.pushesPerSecond).toBe(0);
    expect(pointsOf([reading(0)])).toEqual([]);
  });
});
