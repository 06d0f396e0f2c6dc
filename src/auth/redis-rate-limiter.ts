import type { RedisClient } from '../redis/redis-connection';
import { BoundScript } from '../redis/lua-script';
import { KeyLayout } from '../redis/partitions';
import { redisCall } from '../redis/redis-errors';
import { RATE_ADMIT, RATE_LIMIT } from './rate-limit.scripts';
import { AdmitDecision, FoldedAdmit, RateDecision, RateLimiter, RateRule } from './rate-limiter';
import { retryAfterMs, windowIndex } from './sliding-window';

/**
 * Rate limits shared by every instance on one Redis: one script call (one round trip) per hit or
 * check, two small keys per active key and rule that expire by themselves, in the partition of
 * `<rule>:<key>` (README "Redis key layout"). When Redis cannot
 * answer, the call fails with StoreUnavailableError (REST: 503 with Retry-After): a limit that
 * cannot be counted is not waived.
 */
export class RedisRateLimiter extends RateLimiter {
  private readonly script: BoundScript<typeof RATE_LIMIT>;
  private readonly admitScript: BoundScript<typeof RATE_ADMIT>;
  private readonly keys: KeyLayout;
  override readonly folds: boolean;

  /** `keys`: the key layout, or a plain prefix (one partition, as on a single Redis). */
  constructor(
    private readonly redis: RedisClient,
    keys: KeyLayout | string,
  ) {
    super();
    this.keys = typeof keys === 'string' ? new KeyLayout(keys, false) : keys;
    this.folds = !this.keys.sharded;
    this.script = RATE_LIMIT.bind(redis);
    this.admitScript = RATE_ADMIT.bind(redis);
  }

  /**
   * The gate is only read (a request it blocks is not counted against the other rule), the counted
   * rule decided and counted. With both keys in one partition (one Redis), one RATE_ADMIT call.
   * In different partitions (a Cluster), two RATE_LIMIT calls sent together (one round trip); when
   * the gate refuses, the counted hit (if it was counted) is given back with a DECR, so a request
   * refused by the gate may count for a moment.
   */
  override async admit(gate: RateRule, gateKey: string, counted: RateRule, countedKey: string, now: number): Promise<AdmitDecision> {
    const onePartition = !this.keys.sharded || this.keys.partitionOf(`${gate.name}:${gateKey}`) === this.keys.partitionOf(`${counted.name}:${countedKey}`);
    if (onePartition) return this.admitTogether(gate, gateKey, counted, countedKey, now);
    const [gateDecision, countedDecision] = await Promise.all([this.call(gate, gateKey, now, 0), this.call(counted, countedKey, now, 1)]);
    if (gateDecision.allowed === 0 && countedDecision.allowed === 1) {
      // Fire-and-forget: a refund that fails leaves one hit too many in a window, nothing worse.
      redisCall(this.redis.decr(countedDecision.currentKey)).catch(() => undefined);
    }
    return admission(gate, gateDecision, counted, countedDecision, now);
  }

  /**
   * Both rules' keys in one partition (always on one Redis): one RATE_ADMIT call, which counts the
   * counted rule only when the gate lets the request through (one script call per request fewer).
   */
  private async admitTogether(gate: RateRule, gateKey: string, counted: RateRule, countedKey: string, now: number): Promise<AdmitDecision> {
    const f = this.together(gate, gateKey, counted, countedKey, now);
    return f.decision((await this.admitScript({ keys: f.keys, args: { now, ...f.args } })) as number[]);
  }

  /**
   * On one Redis (one partition), RATE_ADMIT's keys and arguments for a store's write script to
   * run first; not with partitions (a Cluster): the rate keys and the write's are on different
   * slots (`folds` is false).
   */
  override fold(gate: RateRule, gateKey: string, counted: RateRule, countedKey: string, now: number): FoldedAdmit {
    if (!this.folds) return super.fold(gate, gateKey, counted, countedKey, now);
    return this.together(gate, gateKey, counted, countedKey, now);
  }

  private together(gate: RateRule, gateKey: string, counted: RateRule, countedKey: string, now: number): FoldedAdmit {
    const g = this.keysFor(gate, gateKey, now);
    const c = this.keysFor(counted, countedKey, now);
    return {
      keys: { gateCurrent: g.current, gatePrevious: g.previous, countedCurrent: c.current, countedPrevious: c.previous },
      args: {
        gateWindowMs: gate.windowMs,
        gateLimit: gate.limit,
        gateExpiresIn: expiresIn(gate, now),
        countedWindowMs: counted.windowMs,
        countedLimit: counted.limit,
        countedExpiresIn: expiresIn(counted, now),
      },
      now,
      decision: ([gateAllowed, gateCurrent, gatePrevious, countedAllowed, countedCurrent, countedPrevious]) =>
        admission(
          gate,
          { allowed: gateAllowed ?? 0, current: gateCurrent ?? 0, previous: gatePrevious ?? 0 },
          counted,
          { allowed: countedAllowed ?? 0, current: countedCurrent ?? 0, previous: countedPrevious ?? 0 },
          now,
        ),
    };
  }

  async hit(rule: RateRule, key: string, now: number): Promise<RateDecision> {
    return this.decide(rule, key, now, 1);
  }

  async check(rule: RateRule, key: string, now: number): Promise<RateDecision> {
    return this.decide(rule, key, now, 0);
  }

  private async decide(rule: RateRule, key: string, now: number, count: number): Promise<RateDecision> {
    const counts = await this.call(rule, key, now, count);
    if (counts.allowed === 1) return { allowed: true, retryAfterMs: 0 };
    return { allowed: false, retryAfterMs: retryIn(rule, counts, now) };
  }

  private async call(rule: RateRule, key: string, now: number, count: number): Promise<Counts & { currentKey: string }> {
    const keys = this.keysFor(rule, key, now);
    const [allowed, current, previous] = (await this.script({
      keys,
      args: { now, windowMs: rule.windowMs, limit: rule.limit, count, expiresIn: expiresIn(rule, now) },
    })) as [number, number, number];
    return { allowed, current, previous, currentKey: keys.current };
  }

  /** Both windows' counters share the partition of `<rule>:<key>`, so one script reads both. */
  private keysFor(rule: RateRule, key: string, now: number): { current: string; previous: string } {
    const window = windowIndex(now, rule.windowMs);
    const base = `${this.keys.of(`${rule.name}:${key}`)}ratelimit:${rule.name}:${key}:`;
    return { current: base + window, previous: base + (window - 1) };
  }
}

/** What a script says of one rule: allowed (1/0) and the two windows' counts. */
interface Counts {
  allowed: number;
  current: number;
  previous: number;
}

/** A counter matters until the window after its own ends, and no longer. */
function expiresIn(rule: RateRule, now: number): number {
  return (windowIndex(now, rule.windowMs) + 2) * rule.windowMs - now;
}

/** Lua and retryAfterMs compute the same estimate in the same order; at least 1 ms all the same. */
function retryIn(rule: RateRule, counts: Counts, now: number): number {
  return Math.max(1, retryAfterMs(counts, now, rule.windowMs, rule.limit));
}

/** The gate's refusal first, then the counted rule's. */
function admission(gate: RateRule, gateCounts: Counts, counted: RateRule, countedCounts: Counts, now: number): AdmitDecision {
  if (gateCounts.allowed === 0) return { allowed: false, retryAfterMs: retryIn(gate, gateCounts, now), refusedBy: 'gate' };
  if (countedCounts.allowed === 0) return { allowed: false, retryAfterMs: retryIn(counted, countedCounts, now), refusedBy: 'counted' };
  return { allowed: true, retryAfterMs: 0 };
}
