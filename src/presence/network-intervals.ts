/**
 * Smart-heartbeat learning on the server. Devices that announce a network key (`wifi:<ssid>`,
 * `cell:<carrier>`) and keep beating at one interval are sampled; a new device on that network then
 * starts at the lower quartile of those stable intervals: three quarters of the devices seen there
 * held a link at least that long, so it is a safe start that still saves most of the radio wakeups.
 */
export const STABLE_BEATS = 3;
/**
 * A run of STABLE_BEATS beats at interval I spans (STABLE_BEATS - 1) x I from its first beat to its
 * last on the gateway's clock; a run that arrives faster than this share of that (network jitter)
 * claims an interval it did not wait, and is not a sample.
 */
export const STABLE_RUN_TOLERANCE = 0.9;
/**
 * One device adds at most one sample per network in this period, across its sessions and the
 * instances it reaches: a device counts no more than any other that stays connected on that
 * network, so one device cannot pull a network's recommendation down.
 */
export const DEVICE_SAMPLE_PERIOD_MS = 3_600_000;
export const RECOMMEND_PERCENTILE = 0.25;
/** Samples are counted in 1 s buckets (at most HEARTBEAT_MAX_MS / 1 s fields per network). */
export const BUCKET_MS = 1_000;
/** A network nobody reported for this long is forgotten. */
export const NETWORK_RETENTION_MS = 7 * 86_400_000;
/** Only this many networks are listed (most recently sampled first) in metrics and the API. */
export const MAX_LISTED_NETWORKS = 50;

/** Whether a run of STABLE_BEATS beats at `interval`, started at `runStartedAt`, really took that long. */
export function isStableRun(beatsAtInterval: number, runStartedAt: number, now: number, interval: number): boolean {
  return beatsAtInterval === STABLE_BEATS && now - runStartedAt >= (STABLE_BEATS - 1) * interval * STABLE_RUN_TOLERANCE;
}

export function bucketOf(intervalMs: number): number {
  return Math.floor(intervalMs / BUCKET_MS) * BUCKET_MS;
}

/** The lower quartile of a histogram { bucketMs: count }, or undefined without samples. */
export function recommendInterval(histogram: Record<string, number>): number | undefined {
  const buckets = Object.entries(histogram)
    .map(([bucket, count]) => [Number(bucket), count] as const)
    .filter(([bucket, count]) => Number.isFinite(bucket) && count > 0)
    .sort(([a], [b]) => a - b);
  const total = buckets.reduce((sum, [, count]) => sum + count, 0);
  if (total === 0) return undefined;
  let seen = 0;
  for (const [bucket, count] of buckets) {
    seen += count;
    if (seen >= total * RECOMMEND_PERCENTILE) return bucket;
  }
  return buckets.at(-1)?.[0];
}

export interface NetworkStats {
  network: string;
  samples: number;
  recommendedInterval?: number;
}

export function statsOf(network: string, histogram: Record<string, number>): NetworkStats {
  const samples = Object.values(histogram).reduce((a, b) => a + b, 0);
  return { network, samples, recommendedInterval: recommendInterval(histogram) };
}
