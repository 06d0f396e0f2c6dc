/** One limit: at most `limit` hits per key in any `windowMs`. */
export interface RateRule {
  /** Names the counters: the same key counts separately under two rules (`api-key`, `auth-failures`). */
  name: string;
  limit: number;
  windowMs: number;
}

export interface RateDecision {
  allowed: boolean;
  /** When not allowed: how long until one more hit would be (ms). */
  retryAfterMs: number;
}

/** Which of admit's two rules refused, and when to retry. */
export interface AdmitDecision extends RateDecision {
  refusedBy?: 'gate' | 'counted';
}

/**
 * Counts hits per key in sliding windows (see sliding-window.ts), in constant time per call. Two
 * implementations: Redis (every instance shares the counters) and in-process (one instance).
 * Callers pass the time, as they do to the stores, so tests move it.
 */
export abstract class RateLimiter {
  /** Counts one hit for `key` if it fits under `rule`; a refused hit is not counted. */
  abstract hit(rule: RateRule, key: string, now: number): Promise<RateDecision>;

  /** Whether one more hit would fit, counting nothing. */
  abstract check(rule: RateRule, key: string, now: number): Promise<RateDecision>;

  /**
   * `check(gate)` then, if it passes, `hit(counted)`: what every authenticated REST request does
   * (the failed-authentication block of its address, then its API key's limit). The Redis
   * limiter does both in one round trip: that is one script call per request instead of two.
   */
  async admit(gate: RateRule, gateKey: string, counted: RateRule, countedKey: string, now: number): Promise<AdmitDecision> {
    const block = await this.check(gate, gateKey, now);
    if (!block.allowed) return { ...block, refusedBy: 'gate' };
    const decision = await this.hit(counted, countedKey, now);
    return decision.allowed ? decision : { ...decision, refusedBy: 'counted' };
  }
}
