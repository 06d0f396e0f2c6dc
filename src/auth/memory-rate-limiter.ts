import { RateDecision, RateLimiter, RateRule } from './rate-limiter';
import { retryAfterMs, windowIndex } from './sliding-window';

/** A hard ceiling on keys tracked per rule at once (about 100 bytes each), whatever the traffic. */
export const MAX_TRACKED_KEYS = 100_000;

interface Counter {
  window: number;
  previous: number;
  current: number;
}

/**
 * The in-process rate limiter, for the embedded mode (one instance). Per rule, a map of counters
 * kept in order of their last counted hit: a counter whose two windows have both passed is the
 * same as none and is dropped from the front on every call (constant time amortized), and
 * MAX_TRACKED_KEYS bounds the map while many keys are active at once (a flood of failed
 * authentications from many addresses): the oldest is forgotten first.
 */
export class MemoryRateLimiter extends RateLimiter {
  private readonly rules = new Map<string, Map<string, Counter>>();

  constructor(private readonly maxKeys = MAX_TRACKED_KEYS) {
    super();
  }

  async hit(rule: RateRule, key: string, now: number): Promise<RateDecision> {
    return this.decide(rule, key, now, 1);
  }

  async check(rule: RateRule, key: string, now: number): Promise<RateDecision> {
    return this.decide(rule, key, now, 0);
  }

  /** Keys tracked under a rule now (what tests bound). */
  tracked(rule: RateRule): number {
    return this.rules.get(rule.name)?.size ?? 0;
  }

  private decide(rule: RateRule, key: string, now: number, count: number): RateDecision {
    const counters = this.countersOf(rule.name);
    const window = windowIndex(now, rule.windowMs);
    this.forgetBefore(counters, window - 1);
    const c = rolled(counters.get(key), window);
    const retry = retryAfterMs(c, now, rule.windowMs, rule.limit);
    if (retry > 0 || count === 0) return { allowed: retry === 0, retryAfterMs: retry };
    c.current += count;
    // Re-inserted so the map stays in order of last counted hit.
    counters.delete(key);
    if (counters.size >= this.maxKeys) {
      const oldest = counters.keys().next();
      if (!oldest.done) counters.delete(oldest.value);
    }
    counters.set(key, c);
    return { allowed: true, retryAfterMs: 0 };
  }

  private countersOf(name: string): Map<string, Counter> {
    let counters = this.rules.get(name);
    if (!counters) this.rules.set(name, (counters = new Map<string, Counter>()));
    return counters;
  }

  /** Drops counters last hit before window `oldest` (they count nothing any more). */
  private forgetBefore(counters: Map<string, Counter>, oldest: number): void {
    for (const [key, c] of counters) {
      if (c.window >= oldest) return;
      counters.delete(key);
    }
  }
}

/** The counter as seen from `window`: moved on by however many windows passed since its last hit. */
function rolled(c: Counter | undefined, window: number): Counter {
  if (!c) return { window, previous: 0, current: 0 };
  if (c.window === window) return c;
  return { window, previous: c.window === window - 1 ? c.current : 0, current: 0 };
}
