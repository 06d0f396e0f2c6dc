/** How often a per-device warning is written at most. */
export const WARNING_PERIOD_MS = 1_000;

/**
 * A warning that fires once per device when something goes wrong for all of them at once (Redis
 * down, the process overloaded): 10,000 devices beating would write 10,000 lines a second, and
 * writing them would add to the overload that caused them. The first is written at once; those in
 * the next `periodMs` are counted, and the count (with the last of them) is written when the period
 * ends. The metrics still count every one.
 */
export class WarningSummary {
  private windowStart?: number;
  private suppressed = 0;
  private last = '';
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly write: (message: string) => void,
    /** The injected clock's time, read when a warning comes (a field initializer may make this before its owner's clock is set). */
    private readonly now: () => number,
    private readonly periodMs = WARNING_PERIOD_MS,
  ) {}

  warn(message: string): void {
    const now = this.now();
    if (this.windowStart !== undefined && now - this.windowStart < this.periodMs) {
      this.suppressed++;
      this.last = message;
      this.timer ??= setTimeout(() => this.flush(), this.periodMs - (now - this.windowStart)).unref();
      return;
    }
    this.flush();
    this.windowStart = now;
    this.write(message);
  }

  /** Writes the count of what was held back, if anything was. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.suppressed === 0) return;
    this.write(`${this.suppressed} more like it in the last ${this.periodMs / 1000} s, the last: ${this.last}`);
    this.suppressed = 0;
    this.last = '';
  }
}
