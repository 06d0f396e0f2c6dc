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
}
