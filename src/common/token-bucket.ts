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
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.updatedAt) / 1000) * this.ratePerSecond);
    this.updatedAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
