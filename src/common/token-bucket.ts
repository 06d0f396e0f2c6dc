import { Clock } from './clock';

/**
 * A per-socket event budget: `ratePerSecond` tokens refill continuously up to a burst of twice
 * that, so a client that reconnects and sends subscribe + heartbeat at once is not refused, while
 * a flood from one socket is cut off before it costs Redis round trips.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;
  private readonly burst: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly clock: Clock,
  ) {
    this.burst = ratePerSecond * 2;
    this.tokens = this.burst;
    this.updatedAt = clock.now();
  }

  take(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until the next token is due; 0 when one is there now. */
  msUntilNext(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) / this.ratePerSecond) * 1000);
  }

  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.updatedAt) / 1000) * this.ratePerSecond);
    this.updatedAt = now;
  }
}
