import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { IntervalRegistry } from '../common/interval-registry';
import { Clock } from '../common/clock';
import { PeriodicJob } from '../common/periodic-job';
import { AppConfig } from '../config/app-config';
import { PresenceStore } from '../presence/presence.store';
import { DuePartitions } from '../redis/due-partitions';
import { PartitionLeases } from '../redis/partition-leases';

/** Held offlines recorded per store call; one pass keeps going until less than a batch is left. */
export const RELEASE_BATCH = 500;
/** Bounds one pass, so a backlog (all instances were down) drains over a few passes. */
export const RELEASE_MAX_BATCHES = 20;

/**
 * How often held offlines are looked for: every second, or every sweep when sweeps are more
 * frequent, so an event is recorded within about a second after its grace ends (a 5 s sweep
 * would make it up to 5 s late).
 */
export function releasePeriod(sweepIntervalMs: number): number {
  return Math.min(1_000, sweepIntervalMs);
}

/**
 * The partition tick (PresenceStore.releaseHeldOfflines) over the partitions this instance holds
 * the lease of: records the `device.offline` events that PRESENCE_EVENT_GRACE_MS held once their
 * grace ends (flap suppression; the store holds them, see PresenceStore), and in Redis finishes
 * the user.* decisions of a caller that died between a device's change and its user sync. Any
 * instance records a held event, exactly once (two overlap during a lease handover), so the
 * offlines of a dead instance's devices are recorded by the others. A pass reads only the due end
 * of each partition's index: its cost grows with the number due, never with the number of devices.
 * Runs whatever the grace (0 still needs the user-sync repair).
 */
@Injectable()
export class OfflineGraceService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly job: PeriodicJob<number>;

  constructor(
    private readonly store: PresenceStore,
    private readonly clock: Clock,
    private readonly config: AppConfig,
    private readonly scheduler: IntervalRegistry,
    private readonly leases: PartitionLeases,
    private readonly due: DuePartitions,
  ) {
    this.job = new PeriodicJob('offline-grace', this.scheduler, new Logger(OfflineGraceService.name), 'held offline events not recorded yet', () => this.run());
  }

  onApplicationBootstrap(): void {
    this.job.start(releasePeriod(this.config.sweepIntervalMs));
  }

  onApplicationShutdown(): void {
    this.job.stop();
  }

  /** Records the held offlines due now, or joins the pass already running; returns how many. */
  release(): Promise<number> {
    return this.job.run();
  }

  private async run(): Promise<number> {
    const partitions = await this.due.filter(this.leases.owned(), this.store.dueIndexes('tick', this.clock.now()));
    const counts = await Promise.all(partitions.map((p) => this.releaseIn(p)));
    return counts.reduce((a, b) => a + b, 0);
  }

  private async releaseIn(partition: number): Promise<number> {
    let released = 0;
    for (let batch = 0; batch < RELEASE_MAX_BATCHES; batch++) {
      const n = await this.store.releaseHeldOfflines(partition, this.clock.now(), RELEASE_BATCH);
      released += n;
      if (n < RELEASE_BATCH) break;
    }
    return released;
  }
}
