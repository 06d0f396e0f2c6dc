import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { IntervalRegistry } from '../common/interval-registry';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { LoadMonitor } from '../load/load-monitor';
import { PresenceStore } from '../presence/presence.store';
import { DeviceChannel } from '../channel/device-channel';

/**
 * How often an instance reports itself: every 5 s, or every sweep when sweeps are more frequent.
 * Its record lives three periods, so one missed write is fine and a killed instance is gone soon.
 */
export function reportPeriod(sweepIntervalMs: number): number {
  return Math.min(5_000, sweepIntervalMs);
}

/** How often the delay is compared with the one last published, to publish a sharp rise at once. */
export const DELAY_CHECK_MS = 250;
/** A delay below this is never worth an early report. */
export const DELAY_REPORT_FLOOR_MS = 100;

/** Whether a delay moved enough since the last report to publish it before the next one. */
export function delayChanged(published: number, now: number): boolean {
  if (Math.max(published, now) < DELAY_REPORT_FLOOR_MS) return false;
  // Crossing the floor either way, or doubling (halving) above it.
  return (published < DELAY_REPORT_FLOOR_MS) !== (now < DELAY_REPORT_FLOOR_MS) || now >= 2 * published || now * 2 <= published;
}

/**
 * Keeps this instance's record (id, local socket count, load delay) fresh in the store: what
 * GET /v1/presence lists, and what the partition sweepers read to know which instances are alive
 * and how late each may be in handling its heartbeats (its sessions get that much grace).
 */
@Injectable()
export class InstanceRegistry implements OnApplicationBootstrap {
  private readonly logger = new Logger(InstanceRegistry.name);
  private published = 0;

  constructor(
    private readonly store: PresenceStore,
    private readonly channel: DeviceChannel,
    private readonly clock: Clock,
    private readonly config: AppConfig,
    private readonly scheduler: IntervalRegistry,
    private readonly load?: LoadMonitor,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.report();
    const period = reportPeriod(this.config.sweepIntervalMs);
    const timer = setInterval(() => void this.report().catch((err: Error) => this.logger.warn(err.message)), period);
    this.scheduler.addInterval('instance-report', timer);
    if (this.load) {
      const check = setInterval(() => {
        if (delayChanged(this.published, this.load?.delay ?? 0)) void this.report().catch((err: Error) => this.logger.warn(err.message));
      }, DELAY_CHECK_MS);
      this.scheduler.addInterval('instance-delay-report', check);
    }
  }

  report(): Promise<void> {
    const instance = { instanceId: this.config.instanceId, online: this.channel.localCount, lastSeenAt: this.clock.now() };
    this.published = this.load?.delay ?? 0;
    return this.store.touchInstance(instance, reportPeriod(this.config.sweepIntervalMs) * 3, this.published);
  }

  async leave(): Promise<void> {
    for (const name of ['instance-report', 'instance-delay-report']) this.scheduler.deleteInterval(name);
    await this.store.removeInstance(this.config.instanceId);
  }
}
