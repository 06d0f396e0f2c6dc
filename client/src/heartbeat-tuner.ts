import { IntervalStorage } from './storage';

/**
 * Smart heartbeat: finds, per network, the longest heartbeat interval the path to the server
 * survives (NAT and firewall idle timeouts differ between a home Wi-Fi, an office and each carrier).
 *
 * - Start: what this network learned before, else the server's recommendation for the network,
 *   else the server's interval.
 * - Grow: after SUCCESSES_TO_GROW acked beats at an interval, try GROWTH_FACTOR times longer.
 *   Three in a row, not one, so a single lucky beat does not push into a timeout.
 * - Back off: when the link dies at an interval above the last good one, return to the last good
 *   value and mark it stable (or halve, if nothing is known to be good). The link died because an
 *   idle mapping expired; staying just below that is the point.
 * - Re-probe: after REPROBE_AFTER_MS stable, try one step up again: networks change (a new
 *   router, a carrier update), and a value found once should not be kept forever.
 * - Always within the server's [min, max]. In the foreground an app can ask for `min`: fast
 *   detection matters while a person is looking, battery less so; learning is not disturbed.
 */
export const SUCCESSES_TO_GROW = 3;
export const GROWTH_FACTOR = 1.5;
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
    this.state = saved ?? { interval: this.clamp(bounds.recommended ?? bounds.interval), stable: false, successes: 0 };
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

  /** A beat at `interval` was acked after that much idle time. */
  onSuccess(interval: number): void {
    const s = this.state;
    if (this.foreground || interval !== s.interval) return; // only idle periods at the tuned value teach anything
    s.lastGood = Math.max(s.lastGood ?? 0, interval);
    s.successes++;
    if (s.stable && s.stableSince !== undefined && this.now() - s.stableSince >= REPROBE_AFTER_MS) {
      s.stable = false;
      s.successes = SUCCESSES_TO_GROW; // grow right away
    }
    if (!s.stable && s.successes >= SUCCESSES_TO_GROW && s.interval < this.bounds.max) {
      s.interval = this.clamp(Math.round(s.interval * GROWTH_FACTOR));
      s.successes = 0;
    }
    void this.save();
  }

  /** The link died while idling at the current interval. */
  onFailure(): void {
    const s = this.state;
    if (this.foreground) return;
    if (s.lastGood !== undefined && s.lastGood < s.interval) {
      s.interval = s.lastGood;
    } else {
      // Even the last good value failed: the network got worse; halve and relearn from there.
      s.interval = this.clamp(Math.round(s.interval / 2));
      s.lastGood = undefined;
    }
    s.stable = true;
    s.stableSince = this.now();
    s.successes = 0;
    void this.save();
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
