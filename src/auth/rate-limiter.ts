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
 * RateLimiter.admit as keys and arguments for a store's write script to run first, in the same
 * call (rate-limit.scripts.ts withAdmitFirst): one Redis round trip fewer for a request that is
 * admitted and then writes. A refusal comes back as AdmissionRefused, nothing written.
 */
export interface FoldedAdmit {
  keys: { gateCurrent: string; gatePrevious: string; countedCurrent: string; countedPrevious: string };
  args: { gateWindowMs: number; gateLimit: number; gateExpiresIn: number; countedWindowMs: number; countedLimit: number; countedExpiresIn: number };
  /** The time the script must be called with (its `now`), that of the admission. */
  now: number;
  /** The decision from the script's six numbers (RATE_ADMIT's reply). */
  decision(reply: readonly number[]): AdmitDecision;
}

/** A folded admission refused the request: nothing was counted or written. */
export class AdmissionRefused extends Error {
  constructor(readonly decision: AdmitDecision) {
    super(`refused by the ${decision.refusedBy} rule`);
  }
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

  /** Whether fold can be used: not in process (nothing to save), nor where the rate keys are in other partitions. */
  readonly folds: boolean = false;

  /** admit, as a FoldedAdmit for a store's write; only where `folds`. */
  fold(_gate: RateRule, _gateKey: string, _counted: RateRule, _countedKey: string, _now: number): FoldedAdmit {
    throw new Error('this rate limiter cannot fold its admission into a write');
  }
}
