import type { RedisClient } from '../redis/redis-connection';
import { BoundScript } from '../redis/lua-script';
import { RATE_LIMIT } from './rate-limit.scripts';
import { RateDecision, RateLimiter, RateRule } from './rate-limiter';
import { retryAfterMs, windowIndex } from './sliding-window';

/**
 * Rate limits shared by every instance on one Redis: one script call (one round trip) per hit or
 * check, two small keys per active key and rule that expire by themselves. When Redis cannot
 * answer, the call fails with StoreUnavailableError (REST: 503 with Retry-After): a limit that
 * cannot be counted is not waived.
 */
export class RedisRateLimiter extends RateLimiter {
  private readonly script: BoundScript<typeof RATE_LIMIT>;

  constructor(
    redis: RedisClient,
    private readonly prefix: string,
  ) {
    super();
    this.script = RATE_LIMIT.bind(redis);
  }

  async hit(rule: RateRule, key: string, now: number): Promise<RateDecision> {
    return this.decide(rule, key, now, 1);
  }

  async check(rule: RateRule, key: string, now: number): Promise<RateDecision> {
    return this.decide(rule, key, now, 0);
  }

  private async decide(rule: RateRule, key: string, now: number, count: number): Promise<RateDecision> {
    const window = windowIndex(now, rule.windowMs);
    const base = `${this.prefix}ratelimit:${rule.name}:${key}:`;
    const [allowed, current, previous] = (await this.script({
      keys: { current: base + window, previous: base + (window - 1) },
      args: { now, windowMs: rule.windowMs, limit: rule.limit, count, expiresIn: (window + 2) * rule.windowMs - now },
    })) as [number, number, number];
    if (allowed === 1) return { allowed: true, retryAfterMs: 0 };
    // Lua and retryAfterMs compute the same estimate in the same order; at least 1 ms all the same.
    return { allowed: false, retryAfterMs: Math.max(1, retryAfterMs({ previous, current }, now, rule.windowMs, rule.limit)) };
  }
}
