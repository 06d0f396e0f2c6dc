import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { IntervalRegistry } from '../common/interval-registry';
import { Clock } from '../common/clock';
import { PeriodicJob } from '../common/periodic-job';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { FALLBACK_LEASE_MS, FallbackService } from '../push/fallback.service';
import { NotificationStore } from './notification.store';
import { DuePartitions } from '../redis/due-partitions';
import { PartitionLeases } from '../redis/partition-leases';

/**
 * Targets worked on per store call: in Redis one call of about 1000 targets takes some 30 ms
 * (each unacked or expired target appends an event), so heartbeats never wait longer than that.
 */
export const DEADLINE_CLAIM_TARGETS = 1_000;
/** Bounds one tick's work so a backlog drains over a few ticks. */
export const DEADLINE_MAX_CLAIMS = 50;
/** Most time between two claims: fallbacks go out within 2 s of their deadline, ttl events within 10 s. */
export const DEADLINE_TICK_MAX_MS = 500;

/**
 * Fires the deadlines of the notification store's due-time index: ack deadlines
 * (`notification.unacked`, and the `unacked` fallback), ttl expiries (`notification.expired`
 * `ttl`), and native pushes left by an instance that died. Redis keeps one index per partition;
 * every min(SWEEP_INTERVAL_MS, 500 ms) each instance claims what is due in the partitions it
 * leases (PartitionLeases: all of them in embedded mode, a share of them with Redis), all at once.
 * The store hands each entry to one claimant (two overlapping during a lease handover are safe),
 * so each deadline fires once wherever it was set, and nothing waits for a timer in the process
 * that set it.
 */
@Injectable()
export class DeadlineSweeper implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly job: PeriodicJob<number>;

  constructor(
    private readonly store: NotificationStore,
    private readonly fallback: FallbackService,
    private readonly clock: Clock,
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    private readonly scheduler: IntervalRegistry,
    private readonly leases: PartitionLeases,
    private readonly due: DuePartitions,
  ) {
    this.job = new PeriodicJob('notification-deadlines', this.scheduler, new Logger(DeadlineSweeper.name), 'deadline sweep failed', () => this.run());
  }

  onApplicationBootstrap(): void {
    this.job.start(Math.min(this.config.sweepIntervalMs, DEADLINE_TICK_MAX_MS));
  }

  onApplicationShutdown(): void {
    this.job.stop();
  }

  /** Claims what is due now, or joins the claim already running; resolves with the entries claimed. */
  sweep(): Promise<number> {
    return this.job.run();
  }

  private async run(): Promise<number> {
    const partitions = await this.due.filter(this.leases.owned(), this.store.dueIndexes(this.clock.now()));
    const claims = await Promise.allSettled(partitions.map((p) => this.claimPartition(p)));
    this.metrics.deadlineSweeps.inc();
    const failed = claims.find((c): c is PromiseRejectedResult => c.status === 'rejected');
    // The other partitions' claims stand; the failed ones are claimed again at the next tick.
    if (failed) throw failed.reason;
    return claims.reduce((sum, c) => sum + (c as PromiseFulfilledResult<number>).value, 0);
  }

  private async claimPartition(partition: number): Promise<number> {
    let claimed = 0;
    for (let i = 0; i < DEADLINE_MAX_CLAIMS; i++) {
      const now = this.clock.now();
      const claim = await this.store.claimDue(now, DEADLINE_CLAIM_TARGETS, FALLBACK_LEASE_MS, partition);
      claimed += claim.claimed;
      if (claim.unacked) this.metrics.dueClaimed.inc({ kind: 'unacked' }, claim.unacked);
      if (claim.expired) this.metrics.dueClaimed.inc({ kind: 'expired' }, claim.expired);
      this.fallback.send(claim.jobs);
      if (!claim.more) break;
    }
    return claimed;
  }
}
