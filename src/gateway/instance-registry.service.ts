import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { PresenceStore } from '../presence/presence.store';
import { DeviceChannel } from '../channel/device-channel';

/**
 * How often an instance reports itself: every 5 s, or every sweep when sweeps are more frequent.
 * Its record lives three periods, so one missed write is fine and a killed instance is gone soon.
 */
export function reportPeriod(sweepIntervalMs: number): number {
  return Math.min(5_000, sweepIntervalMs);
}

/** Keeps this instance's entry (id, local socket count) fresh in the store for GET /v1/presence. */
@Injectable()
export class InstanceRegistry implements OnApplicationBootstrap {
  private readonly logger = new Logger(InstanceRegistry.name);

  constructor(
    private readonly store: PresenceStore,
    private readonly channel: DeviceChannel,
    private readonly clock: Clock,
    private readonly config: AppConfig,
    private readonly scheduler: SchedulerRegistry,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.report();
    const period = reportPeriod(this.config.sweepIntervalMs);
    const timer = setInterval(() => void this.report().catch((err: Error) => this.logger.warn(err.message)), period);
    this.scheduler.addInterval('instance-report', timer);
  }

  report(): Promise<void> {
    const instance = { instanceId: this.config.instanceId, online: this.channel.localCount, lastSeenAt: this.clock.now() };
    return this.store.touchInstance(instance, reportPeriod(this.config.sweepIntervalMs) * 3);
  }

  async leave(): Promise<void> {
    if (this.scheduler.doesExist('interval', 'instance-report')) this.scheduler.deleteInterval('instance-report');
    await this.store.removeInstance(this.config.instanceId);
  }
}
