import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { Clock } from '../common/clock';
import { PeriodicJob } from '../common/periodic-job';
import { AppConfig } from '../config/app-config';
import { LoadMonitor } from '../load/load-monitor';
import { MetricsService } from '../metrics/metrics.service';
import { PresenceStore } from '../presence/presence.store';
import { DeviceChannel } from '../channel/device-channel';
import { TokenExpiry } from './token-expiry.service';

/** Claimed per store call; one sweep keeps claiming until less than a batch is left. */
export const SWEEP_BATCH = 500;
/** Bounds one tick's work so a backlog (say, after Redis was down) drains over a few ticks. */
export const SWEEP_MAX_BATCHES = 20;

/**
 * Every SWEEP_INTERVAL_MS, retires sessions whose presence ran out and closes their sockets if
 * they are here, even if the transport still looks alive (a hung app behind a live TCP link).
 * The store reads only the expired end of its expiry index, so a sweep costs time in the number
 * expired, never in the number online. Sweepers on several instances can run at once: the store
 * hands each expired session to exactly one of them. Each sweep also ends this instance's sessions
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
    private readonly scheduler: SchedulerRegistry,
    private readonly load: LoadMonitor,
    private readonly tokens: TokenExpiry,
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
   * lose the race against the sweep. Sessions of an instance that stopped reporting itself alive
   * have nobody to be late for them: they go at their TTL.
   */
  private async run(): Promise<number> {
    const end = this.metrics.sweepDuration.startTimer();
    let retired = 0;
    try {
      this.tokens.endDue();
      retired += await this.claim(this.config.instanceId, () => this.clock.now() - this.load.delay);
      for (const owner of await this.store.orphanedOwners(this.clock.now())) {
        if (owner !== this.config.instanceId) retired += await this.claim(owner, () => this.clock.now());
      }
      this.lastRunAt = this.clock.now();
      return retired;
    } finally {
      if (retired) this.metrics.presenceExpired.inc(retired);
      end();
    }
  }

  private async claim(owner: string, expiredBefore: () => number): Promise<number> {
    let retired = 0;
    for (let batch = 0; batch < SWEEP_MAX_BATCHES; batch++) {
      const expired = await this.store.claimExpired(owner, expiredBefore(), SWEEP_BATCH, this.config.instanceId);
      this.channel.close(expired, 'expired');
      retired += expired.length;
      if (expired.length < SWEEP_BATCH) break;
    }
    return retired;
  }
}
