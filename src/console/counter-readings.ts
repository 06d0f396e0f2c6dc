/**
 * One reading of the cumulative counters the console charts, as a Prometheus scrape would see them
 * on this instance. Rates come from the difference of consecutive readings, as `rate()` does.
 */
export interface CounterReading {
  /** epoch ms */
  at: number;
  /** heartbeats handled, every result (ok, invalid, expired, error) */
  heartbeats: number;
  pushesSent: number;
  pushesAcked: number;
  presenceExpired: number;
  sweeps: number;
  sweepSeconds: number;
  /** devices with a live socket here (a gauge, not a counter) */
  connected: number;
}

/** What happened between two readings; per-second rates, counts for rare events. */
export interface StatsPoint {
  at: number;
  heartbeatsPerSecond: number;
  pushesPerSecond: number;
  acksPerSecond: number;
  /** sessions the sweeper retired because their presence ran out */
  expired: number;
  sweeps: number;
  /** mean duration of those sweeps, ms; absent when none finished */
  sweepMeanMs?: number;
  connected: number;
}

const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

/**
 * Points between consecutive readings. A pair whose clock did not move forward is skipped (a
 * stopped test clock), and a counter that went down counts as zero (never, for one process's own
 * counters, but a negative rate would be a lie on a chart).
 */
export function pointsOf(readings: readonly CounterReading[]): StatsPoint[] {
  const points: StatsPoint[] = [];
  for (let i = 1; i < readings.length; i++) {
    const prev = readings[i - 1]!;
    const cur = readings[i]!;
    const seconds = (cur.at - prev.at) / 1000;
    if (seconds <= 0) continue;
    const delta = (key: keyof CounterReading) => Math.max(0, cur[key] - prev[key]);
    const sweeps = delta('sweeps');
    points.push({
      at: cur.at,
      heartbeatsPerSecond: round(delta('heartbeats') / seconds),
      pushesPerSecond: round(delta('pushesSent') / seconds),
      acksPerSecond: round(delta('pushesAcked') / seconds),
      expired: delta('presenceExpired'),
      sweeps,
      sweepMeanMs: sweeps > 0 ? round((delta('sweepSeconds') * 1000) / sweeps, 3) : undefined,
      connected: cur.connected,
    });
  }
  return points;
}
