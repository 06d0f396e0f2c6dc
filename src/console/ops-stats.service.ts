import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { IntervalRegistry } from '../common/interval-registry';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { HeartbeatPolicy, TTL_FACTOR } from '../presence/heartbeat-policy';
import { CounterReading, pointsOf } from './counter-readings';
import { OpsStatsDto, SweepBucketDto } from './ops-stats.dto';

export const SAMPLE_INTERVAL_MS = 1_000;
/** Five minutes of one-second readings: the ring is bounded whatever the uptime (about 30 KB). */
export const MAX_READINGS = 301;

const INTERVAL_NAME = 'ops-stats-sample';

interface Readable {
  get(): Promise<{ name: string; values: { value: number; metricName?: string; labels: Partial<Record<string, string | number>> }[] }>;
}

/** Every value of a metric added up (all label sets). */
async function total(metric: Readable): Promise<number> {
  const { values } = await metric.get();
  return values.reduce((sum, v) => sum + v.value, 0);
}

/** A histogram's count, sum and cumulative buckets. */
async function histogramOf(metric: Readable): Promise<{ count: number; sum: number; buckets: SweepBucketDto[] }> {
  const { name, values } = await metric.get();
  const series = (suffix: string) => values.filter((v) => v.metricName === `${name}_${suffix}`);
  return {
    count: series('count')[0]?.value ?? 0,
    sum: series('sum')[0]?.value ?? 0,
    buckets: series('bucket').map((v) => ({ leMs: v.labels.le === '+Inf' ? null : Number(v.labels.le) * 1000, count: v.value })),
  };
}

/**
 * The console's live charts: this instance's own Prometheus counters read once a second into a
 * bounded ring, so the page gets rates over the last minutes without a Prometheus server. Only
 * this instance's counters: with several instances, the one answering names itself, and fleet
 * rates are Prometheus's job (sum by instance).
 */
@Injectable()
export class OpsStatsService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(OpsStatsService.name);
  private readonly readings: CounterReading[] = [];

  constructor(
    private readonly metrics: MetricsService,
    private readonly clock: Clock,
    private readonly config: AppConfig,
    private readonly policy: HeartbeatPolicy,
    private readonly scheduler: IntervalRegistry,
  ) {}

  onApplicationBootstrap(): void {
    this.tick();
    this.scheduler.addInterval(INTERVAL_NAME, setInterval(() => this.tick(), SAMPLE_INTERVAL_MS));
  }

  onApplicationShutdown(): void {
    this.scheduler.deleteInterval(INTERVAL_NAME);
  }

  private tick(): void {
    this.read().then(
      (reading) => {
        if (this.readings.push(reading) > MAX_READINGS) this.readings.shift();
      },
      (err: Error) => this.logger.warn(`reading metrics failed: ${err.message}`),
    );
  }

  private async read(): Promise<CounterReading> {
    return (await this.readWithSweeps()).reading;
  }

  /** One reading of the counters, with the sweep histogram it was taken from (its buckets too). */
  private async readWithSweeps(): Promise<{ reading: CounterReading; sweep: { buckets: SweepBucketDto[] } }> {
    const m = this.metrics;
    const [heartbeats, pushesSent, pushesAcked, presenceExpired, sweep, connected] = await Promise.all([
      total(m.heartbeats),
      total(m.pushesSent),
      total(m.pushesAcked),
      total(m.presenceExpired),
      histogramOf(m.sweepDuration),
      total(m.connectedDevices),
    ]);
    const at = this.clock.now();
    return { reading: { at, heartbeats, pushesSent, pushesAcked, presenceExpired, sweeps: sweep.count, sweepSeconds: sweep.sum, connected }, sweep };
  }

  async stats(): Promise<Omit<OpsStatsDto, 'credential'>> {
    const [{ reading: now, sweep }, unacked] = await Promise.all([this.readWithSweeps(), total(this.metrics.pushesUnacked)]);
    const interval = this.config.heartbeat.interval;
    const ttl = this.policy.ttlFor(interval);
    return {
      instanceId: this.config.instanceId,
      now: now.at,
      sampleIntervalMs: SAMPLE_INTERVAL_MS,
      // The ring only: a last point from its newest reading to now would span a fraction of a
      // second, and its rate would jump with every poll.
      points: pointsOf(this.readings),
      totals: {
        heartbeats: now.heartbeats,
        pushesSent: now.pushesSent,
        pushesAcked: now.pushesAcked,
        pushesUnacked: unacked,
        presenceExpired: now.presenceExpired,
        sweeps: now.sweeps,
        connected: now.connected,
      },
      sweeps: {
        intervalMs: this.config.sweepIntervalMs,
        count: now.sweeps,
        meanMs: now.sweeps > 0 ? Math.round((now.sweepSeconds / now.sweeps) * 1e6) / 1e3 : undefined,
        buckets: sweep.buckets,
      },
      presence: {
        heartbeatIntervalMs: interval,
        ttlFactor: TTL_FACTOR,
        ttlSlackMs: this.policy.ttlSlackMs,
        ttlMs: ttl,
        offlineBoundMs: ttl + this.config.sweepIntervalMs,
      },
    };
  }
}
