import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { IntervalRegistry } from '../common/interval-registry';
import { Clock } from '../common/clock';
import { PeriodicJob } from '../common/periodic-job';
import { AppConfig } from '../config/app-config';
import { LoadMonitor } from '../load/load-monitor';
import { MetricsService } from '../metrics/metrics.service';
import { LiveInstances, PresenceStore } from '../presence/presence.store';
import { DuePartitions } from '../redis/due-partitions';
import { PartitionLeases } from '../redis/partition-leases';
import { DeviceChannel } from '../channel/device-channel';
import { TokenExpiry } from './token-expiry.service';

/** Claimed per store call; one sweep keeps claiming until less than a batch is left. */
export const SWEEP_BATCH = 500;
/** Bounds one tick's work per partition so a backlog (say, after Redis was down) drains over a few ticks. */
export const SWEEP_MAX_BATCHES = 20;
/**
 * Added to the delay another instance published: its heartbeats travel on its own connection, so
 * one it sent just before this sweep may reach Redis a little after this instance's claim.
 */
export const OTHER_OWNER_MARGIN_MS = 250;

/**
 * Every SWEEP_INTERVAL_MS, retires sessions whose presence ran out and closes their sockets if
 * they are here, even if the transport still looks alive (a hung app behind a live TCP link).
 * Each instance sweeps the partitions it holds the lease of (PartitionLeases), whatever instance
 * holds their sessions; the store reads only the expired end of each partition's expiry index, so
 * a sweep costs time in the number expired, never in the number online. Sweepers on several
 * instances can run at once on a partition (a lease handover): the store hands each expired
 * session to exactly one of them. Each sweep also ends this instance's sessions
 * whose token ran out (TokenExpiry), a local check that needs no store.
 */
@Injectable()
export class SessionSweeper implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly job: PeriodicJob<number>;
  private lastRunAt?: number;

  constructor(
    private readonly store: PresenceStore,
    private readonly channel: DeviceChannel,
    private readonly clock: Clock,
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    private readonly scheduler: IntervalRegistry,
    private readonly load: LoadMonitor,
    private readonly tokens: TokenExpiry,
    private readonly leases: PartitionLeases,
    private readonly due: DuePartitions,
  ) {
    this.job = new PeriodicJob('presence-sweep', this.scheduler, new Logger(SessionSweeper.name), 'sweep failed', () => this.run());
  }

  onApplicationBootstrap(): void {
    this.job.start(this.config.sweepIntervalMs);
  }

  onApplicationShutdown(): void {
    this.stop();
  }

  stop(): void {
    this.job.stop();
  }

  /** Healthy when a sweep finished within the last three intervals (or the app just started). */
  isHealthy(now: number, startedAt: number): boolean {
    const since = this.lastRunAt ?? startedAt;
    return now - since <= this.config.sweepIntervalMs * 3;
  }

  /** Runs one sweep now, or joins the one already running; returns how many sessions it retired. */
  sweep(): Promise<number> {
    return this.job.run();
  }

  /**
   * This instance's own sessions expire only once they are past their TTL by more than this
   * process is behind (LoadMonitor): a heartbeat it has received but not yet handled must not
   * lose the race against the sweep (its claims go on the connection its heartbeats take, so a
   * heartbeat it sent before a claim is applied first). Another live instance's sessions get the
   * delay it published plus OTHER_OWNER_MARGIN_MS; those of an instance that stopped reporting
   * itself alive have nobody to be late for them: they go at their TTL (`instance_lost`).
   */
  private async run(): Promise<number> {
    const end = this.metrics.sweepDuration.startTimer();
    let retired = 0;
    try {
      this.tokens.endDue();
      const others = new Map<string, number>();
      for (const [id, delay] of await this.store.liveInstances(this.clock.now())) {
        if (id !== this.config.instanceId) others.set(id, delay + OTHER_OWNER_MARGIN_MS);
      }
      const partitions = await this.due.filter(this.leases.owned(), this.store.dueIndexes('sweep', this.clock.now()));
      const counts = await Promise.all(partitions.map((p) => this.claim(p, others)));
      retired = counts.reduce((a, b) => a + b, 0);
      this.lastRunAt = this.clock.now();
      return retired;
    } finally {
      if (retired) this.metrics.presenceExpired.inc(retired);
      end();
    }
  }

  private async claim(partition: number, others: LiveInstances): Promise<number> {
    let retired = 0;
    for (let batch = 0; batch < SWEEP_MAX_BATCHES; batch++) {
      // Our own delay as it is now, not as it was when the sweep began.
      const live = new Map(others).set(this.config.instanceId, this.load.delay);
      const expired = await this.store.claimExpired(partition, this.clock.now(), SWEEP_BATCH, live);
      this.channel.close(expired, 'expired');
      retired += expired.length;
      if (expired.length < SWEEP_BATCH) break;
    }
    return retired;
  }
}
