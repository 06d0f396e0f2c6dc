import { Clock } from '../common/clock';

/** A hard ceiling on addresses tracked at once, whatever the traffic (about 100 bytes each). */
export const MAX_TRACKED_ADDRESSES = 100_000;

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Socket handshakes per client address: `ratePerSecond` tokens refill continuously up to a burst
 * of twice that (as the per-socket event budget). An address whose bucket has refilled is the same
 * as one never seen, so it is forgotten: the map holds only addresses active in the last
 * 2 seconds, oldest first, and is pruned from the front on every call (constant time per
 * handshake); MAX_TRACKED_ADDRESSES bounds it during a flood from many addresses.
 */
export class HandshakeLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly burst: number;
  private readonly refillMs: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly clock: Clock,
    private readonly maxTracked = MAX_TRACKED_ADDRESSES,
  ) {
    this.burst = ratePerSecond * 2;
    this.refillMs = (this.burst / ratePerSecond) * 1000;
  }

  /** Takes one handshake from the address's budget; false when it has none left. */
  take(address: string): boolean {
    const now = this.clock.now();
    this.prune(now);
    const previous = this.buckets.get(address);
    const tokens = previous ? Math.min(this.burst, previous.tokens + ((now - previous.at) / 1000) * this.ratePerSecond) : this.burst;
    // Re-inserted so the map stays in order of last use.
    this.buckets.delete(address);
    if (this.buckets.size >= this.maxTracked) this.evictOldest();
    const allowed = tokens >= 1;
    this.buckets.set(address, { tokens: allowed ? tokens - 1 : tokens, at: now });
    return allowed;
  }

  /** Addresses currently tracked (what tests bound). */
  get size(): number {
    return this.buckets.size;
  }

  private prune(now: number): void {
    for (const [address, bucket] of this.buckets) {
      if (bucket.at + this.refillMs > now) return;
      this.buckets.delete(address);
    }
  }

  private evictOldest(): void {
    const oldest = this.buckets.keys().next();
    if (!oldest.done) this.buckets.delete(oldest.value);
  }
}
