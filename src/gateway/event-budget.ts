import { Clock } from '../common/clock';
import { TokenBucket } from '../common/token-bucket';

/** Seconds in a row over SOCKET_EVENTS_PER_SECOND after which a socket is ended (the contract's "5 s in a row"). */
export const OVER_BUDGET_SECONDS_TO_END = 5;

export interface BudgetVerdict {
  /** The packet may be handled (a token was there). */
  allowed: boolean;
  /** The socket has now been over its budget for OVER_BUDGET_SECONDS_TO_END seconds in a row. */
  end: boolean;
}

/**
 * A socket's event budget, on the injected clock. Every packet the client sends takes a token
 * first (SOCKET_EVENTS_PER_SECOND per second, bursts of twice that), whatever it turns out to be:
 * unknown, malformed and oversized ones cost the same as good ones. Separately it counts packets
 * per clock second: a second with more than the budget is "over", and OVER_BUDGET_SECONDS_TO_END
 * over-seconds in a row (no second without packets, none within budget) mean the client keeps
 * sending faster than it is allowed, so the session is ended rather than refused forever. A
 * reconnect burst fills one second, never five.
 */
export class EventBudget {
  private readonly bucket: TokenBucket;
  private second = Number.NaN;
  private inSecond = 0;
  private overInARow = 0;

  constructor(
    private readonly perSecond: number,
    private readonly clock: Clock,
  ) {
    this.bucket = new TokenBucket(perSecond, clock);
  }

  take(): BudgetVerdict {
    const second = Math.floor(this.clock.now() / 1000);
    if (second !== this.second) {
      const previousWasOver = this.inSecond > this.perSecond && second === this.second + 1;
      if (!previousWasOver) this.overInARow = 0;
      this.second = second;
      this.inSecond = 0;
    }
    this.inSecond++;
    if (this.inSecond === this.perSecond + 1) this.overInARow++;
    return { allowed: this.bucket.take(), end: this.overInARow >= OVER_BUDGET_SECONDS_TO_END };
  }

  /** How long until the next packet would be allowed (ms; 0 now). */
  msUntilNextToken(): number {
    return this.bucket.msUntilNext();
  }
}
