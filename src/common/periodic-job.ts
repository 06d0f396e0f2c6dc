import { Logger } from '@nestjs/common';
import { IntervalRegistry } from './interval-registry';

/**
 * A store job every instance runs on a period (sweeps, releases, deadline claims): registered
 * with the IntervalRegistry under `name`, never two runs at once (a call during a run joins
 * it), and a failed periodic run logged, never thrown (the next period tries again).
 */
export class PeriodicJob<T> {
  private running?: Promise<T>;

  constructor(
    private readonly name: string,
    private readonly scheduler: IntervalRegistry,
    private readonly logger: Logger,
    /** What the warning says before the error's message when a periodic run fails. */
    private readonly failure: string,
    private readonly job: () => Promise<T>,
  ) {}

  start(periodMs: number): void {
    this.scheduler.addInterval(this.name, setInterval(() => void this.tick(), periodMs));
  }

  stop(): void {
    this.scheduler.deleteInterval(this.name);
  }

  /** Runs the job now, or joins the run already going. */
  run(): Promise<T> {
    this.running ??= this.job().finally(() => (this.running = undefined));
    return this.running;
  }

  private async tick(): Promise<void> {
    try {
      await this.run();
    } catch (err) {
      this.logger.warn(`${this.failure}: ${(err as Error).message}`);
    }
  }
}
