import { Global, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';

/**
 * The named intervals of an instance's periodic work (sweeps, reports, probes, lease ticks), each
 * started once and stopped by its name; any still registered at shutdown are cleared. This is
 * what the gateway used `@nestjs/schedule`'s SchedulerRegistry for, without loading its cron
 * engine (cron and luxon: some 1.3 MB of heap in a process that runs no cron job).
 */
@Injectable()
export class IntervalRegistry implements OnApplicationShutdown {
  private readonly intervals = new Map<string, NodeJS.Timeout>();

  /** Registers a running interval under `name`; a name in use is a bug (two starts of one job). */
  addInterval(name: string, interval: NodeJS.Timeout): void {
    if (this.intervals.has(name)) {
      clearInterval(interval);
      throw new Error(`interval "${name}" is already registered`);
    }
    this.intervals.set(name, interval);
  }

  has(name: string): boolean {
    return this.intervals.has(name);
  }

  /** Stops the interval registered under `name`; a name not (or no longer) registered is a no-op, so stops need no check first. */
  deleteInterval(name: string): void {
    clearInterval(this.intervals.get(name));
    this.intervals.delete(name);
  }

  getIntervals(): string[] {
    return [...this.intervals.keys()];
  }

  onApplicationShutdown(): void {
    for (const name of this.getIntervals()) this.deleteInterval(name);
  }
}

/** Makes the IntervalRegistry injectable everywhere. */
@Global()
@Module({ providers: [IntervalRegistry], exports: [IntervalRegistry] })
export class IntervalsModule {}
