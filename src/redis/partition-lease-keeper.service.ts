import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { IntervalRegistry } from '../common/interval-registry';
import { PeriodicJob } from '../common/periodic-job';
import { AppConfig } from '../config/app-config';
import { PartitionLeases } from './partition-leases';

/** Most time between two lease refreshes; a lease lasts three refreshes. */
export const LEASE_REFRESH_MAX_MS = 1_000;

export function leaseRefreshMs(config: AppConfig): number {
  return Math.min(LEASE_REFRESH_MAX_MS, config.sweepIntervalMs);
}

/**
 * Keeps this instance's partition leases: taken before the periodic jobs start, renewed every
 * min(SWEEP_INTERVAL_MS, 1 s), given up at shutdown so the others take them at once.
 */
@Injectable()
export class PartitionLeaseKeeper implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly job: PeriodicJob<readonly number[]>;

  constructor(
    private readonly leases: PartitionLeases,
    private readonly config: AppConfig,
    scheduler: IntervalRegistry,
  ) {
    this.job = new PeriodicJob('partition-leases', scheduler, new Logger(PartitionLeaseKeeper.name), 'partition lease refresh failed', () => this.leases.refresh());
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.job.run().catch(() => undefined);
    this.job.start(leaseRefreshMs(this.config));
  }

  async onApplicationShutdown(): Promise<void> {
    this.job.stop();
    await this.leases.release();
  }
}
