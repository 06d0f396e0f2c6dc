import { IntervalStorage } from './storage';

/**
 * Smart heartbeat: finds, per network, the longest heartbeat interval the path to the server
 * survives (NAT and firewall idle timeouts differ between a home Wi-Fi, an office and each carrier).
 * The client reports only real evidence: a beat that went out after the link had been idle for
 * the whole interval (see IdleGap), so a server ping or a notification inside the gap never
 * passes for a surviving idle period.
 *
 * - Start: what this network learned before; else the server's recommendation for the network,
 *   taken as known good and stable (other devices settled there: climbing again would only lose
 *   links); else the server's interval.
 * - Grow: after SUCCESSES_TO_GROW idle beats at an interval, try GROWTH_FACTOR times longer.
 *   Three in a row, not one, so a single lucky beat does not push into a timeout.
 * - Bracket: once the link died at F with G known good (G < F), the idle timeout lies between
 *   them: probe the midpoint (SUCCESSES_TO_GROW idle beats make it the new G, a failure the new F)
 *   until G >= SETTLE_RATIO x F, then stay at G (stable). Growth overshoots by at most 1.5x, so
 *   this costs at most two lost links and ends above 80 % of the timeout.
 * - Halve: when even the last good value fails (or nothing was known good), the network got
 *   worse: halve and relearn (the failed value bounds the bracket).
 * - Re-probe: after REPROBE_AFTER_MS stable, try the value that failed (or one step up if none
 *   did): networks change (a new router, a carrier update), and a value found once should not be
 *   kept forever. If it fails again the bracket is already narrow: back to G at once.
 * - Always within the server's [min, max]. In the foreground an app can ask for `min`: fast
 *   detection matters while a person is looking, battery less so; learning is not disturbed.
 */
export const SUCCESSES_TO_GROW = 3;
export const GROWTH_FACTOR = 1.5;
export const SETTLE_RATIO = 0.8;
export const REPROBE_AFTER_MS = 30 * 60_000;

export interface HeartbeatBounds {
  interval: number;
  min: number;
  max: number;
  recommended?: number;
}

export interface NetworkState {
  /** The interval in use. */
  interval: number;
  /** The longest interval known to hold on this network. */
  lastGood?: number;
  /** The shortest interval known to fail on this network (above lastGood). */
  failedAt?: number;
  stable: boolean;
  stableSince?: number;
  successes: number;
}

export class HeartbeatTuner {
  private state!: NetworkState;
  private bounds!: HeartbeatBounds;
  private network = 'default';
  private foreground = false;

  constructor(
    private readonly storage: IntervalStorage,
    private readonly now: () => number = Date.now,
  ) {}

  /** Picks the starting interval for a session on `network` within the server's bounds. */
  async start(network: string | undefined, bounds: HeartbeatBounds): Promise<number> {
    this.bounds = bounds;
    this.network = network ?? 'default';
    const saved = await this.load();
    this.state = saved ?? this.fresh(bounds);
    this.state.interval = this.clamp(this.state.interval);
    if (this.state.lastGood !== undefined) this.state.lastGood = this.clamp(this.state.lastGood);
    return this.interval;
  }

  /** The interval to announce with the next beat. */
  get interval(): number {
    return this.foreground ? this.bounds.min : this.state.interval;
  }

  get snapshot(): Readonly<NetworkState> {
    return { ...this.state };
  }

  setForeground(foreground: boolean): void {
    this.foreground = foreground;
  }

  /** A beat at `interval` was acked after the link had been idle for that long. */
  onSuccess(interval: number): void {
    const s = this.state;
    if (this.foreground || interval !== s.interval) return; // only idle periods at the tuned value teach anything
    s.successes++;
    if (s.stable) {
      if (s.stableSince !== undefined && this.now() - s.stableSince >= REPROBE_AFTER_MS) this.reprobe();
    } else if (s.successes >= SUCCESSES_TO_GROW) {
      // Known good only after a run: one lucky beat at 13.5 s is not a 13.5 s link.
      s.lastGood = Math.max(s.lastGood ?? 0, interval);
      this.next();
    }
    void this.save();
  }

  /** The link died after idling for the current interval. */
  onFailure(): void {
    const s = this.state;
    if (this.foreground) return;
    s.successes = 0;
    if (s.lastGood !== undefined && s.lastGood < s.interval) {
      s.failedAt = s.interval;
      this.next();
    } else {
      // Even the last good value failed: the network got worse; halve and relearn from there.
      s.failedAt = s.interval;
      s.lastGood = undefined;
      s.interval = this.clamp(Math.round(s.interval / 2));
      s.stable = false;
      s.stableSince = undefined;
    }
    void this.save();
  }

  /** The next value to try from what is known: grow, probe the bracket's midpoint, or settle. */
  private next(): void {
    const s = this.state;
    s.successes = 0;
    const good = s.lastGood ?? s.interval;
    if (s.failedAt !== undefined && s.failedAt <= good) s.failedAt = undefined; // the network got better
    if (s.failedAt === undefined) {
      s.interval = this.clamp(Math.round(good * GROWTH_FACTOR));
    } else if (good >= Math.floor(SETTLE_RATIO * s.failedAt) || s.failedAt - good <= 1) { // floor: ms rounding must not cost a link
      s.interval = good;
      s.stable = true;
      s.stableSince = this.now();
    } else {
      s.interval = this.clamp(Math.round((good + s.failedAt) / 2));
    }
  }

  private reprobe(): void {
    const s = this.state;
    s.stable = false;
    s.stableSince = undefined;
    s.successes = 0;
    const target = s.failedAt ?? Math.round(s.interval * GROWTH_FACTOR);
    s.failedAt = undefined;
    s.interval = this.clamp(target);
  }

  private fresh(bounds: HeartbeatBounds): NetworkState {
    if (bounds.recommended === undefined) return { interval: this.clamp(bounds.interval), stable: false, successes: 0 };
    const recommended = this.clamp(bounds.recommended);
    return { interval: recommended, lastGood: recommended, stable: true, stableSince: this.now(), successes: 0 };
  }

  private clamp(value: number): number {
    return Math.min(this.bounds.max, Math.max(this.bounds.min, value));
  }

  private key(): string {
    return `push-gateway:heartbeat:${this.network}`;
  }

  private async load(): Promise<NetworkState | undefined> {
    try {
      const raw = await this.storage.get(this.key());
      const parsed = raw ? (JSON.parse(raw) as NetworkState) : undefined;
      return parsed && typeof parsed.interval === 'number' ? parsed : undefined;
    } catch {
      return undefined;
    }
  }

  private async save(): Promise<void> {
    try {
      await this.storage.set(this.key(), JSON.stringify(this.state));
    } catch {
      // storage full or unavailable: learning still works for this session
    }
  }
}
