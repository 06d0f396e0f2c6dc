import type { RedisClient } from '../redis/redis-connection';
import { BoundScript } from '../redis/lua-script';
import { RATE_ADMIT, RATE_LIMIT } from './rate-limit.scripts';
import { AdmitDecision, RateDecision, RateLimiter, RateRule } from './rate-limiter';
import { retryAfterMs, windowIndex } from './sliding-window';

/**
 * Rate limits shared by every instance on one Redis: one script call (one round trip) per hit or
 * check, two small keys per active key and rule that expire by themselves. When Redis cannot
 * answer, the call fails with StoreUnavailableError (REST: 503 with Retry-After): a limit that
 * cannot be counted is not waived.
 */
export class RedisRateLimiter extends RateLimiter {
  private readonly script: BoundScript<typeof RATE_LIMIT>;
  private readonly admitScript: BoundScript<typeof RATE_ADMIT>;

  constructor(
    redis: RedisClient,
    private readonly prefix: string,
  ) {
    super();
    this.script = RATE_LIMIT.bind(redis);
    this.admitScript = RATE_ADMIT.bind(redis);
  }

  override async admit(gate: RateRule, gateKey: string, counted: RateRule, countedKey: string, now: number): Promise<AdmitDecision> {
    const gateKeys = this.keysFor(gate, gateKey, now);
    const keys = this.keysFor(counted, countedKey, now);
    const window = windowIndex(now, counted.windowMs);
    const [which, current, previous] = (await this.admitScript({
      keys: { gateCurrent: gateKeys.current, gatePrevious: gateKeys.previous, current: keys.current, previous: keys.previous },
      args: {
        now,
        gateWindowMs: gate.windowMs,
        gateLimit: gate.limit,
        windowMs: counted.windowMs,
        limit: counted.limit,
        expiresIn: (window + 2) * counted.windowMs - now,
      },
    })) as [number, number, number];
    if (which === 0) return { allowed: true, retryAfterMs: 0 };
    const rule = which === 1 ? gate : counted;
    return { allowed: false, retryAfterMs: Math.max(1, retryAfterMs({ previous, current }, now, rule.windowMs, rule.limit)), refusedBy: which === 1 ? 'gate' : 'counted' };
  }

  async hit(rule: RateRule, key: string, now: number): Promise<RateDecision> {
    return this.decide(rule, key, now, 1);
  }

  async check(rule: RateRule, key: string, now: number): Promise<RateDecision> {
    return this.decide(rule, key, now, 0);
  }

  private async decide(rule: RateRule, key: string, now: number, count: number): Promise<RateDecision> {
    const window = windowIndex(now, rule.windowMs);
    const [allowed, current, previous] = (await this.script({
      keys: this.keysFor(rule, key, now),
      args: { now, windowMs: rule.windowMs, limit: rule.limit, count, expiresIn: (window + 2) * rule.windowMs - now },
    })) as [number, number, number];
    if (allowed === 1) return { allowed: true, retryAfterMs: 0 };
    // Lua and retryAfterMs compute the same estimate in the same order; at least 1 ms all the same.
    return { allowed: false, retryAfterMs: Math.max(1, retryAfterMs({ previous, current }, now, rule.windowMs, rule.limit)) };
  }

  private keysFor(rule: RateRule, key: string, now: number): { current: string; previous: string } {
    const window = windowIndex(now, rule.windowMs);
    const base = `${this.prefix}ratelimit:${rule.name}:${key}:`;
    return { current: base + window, previous: base + (window - 1) };
  }
}
