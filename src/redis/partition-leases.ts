import { Logger } from '@nestjs/common';
import { Clock } from '../common/clock';
import { luaScript, BoundScript } from './lua-script';
import { crc16, KeyLayout } from './partitions';
import type { RedisClient } from './redis-connection';

/**
 * Which partitions this instance works on for the periodic jobs (presence sweep, held offlines,
 * deadlines, webhook intake). Leases only spread the work: every claim those jobs make is an
 * atomic script, safe when two instances overlap during a handover.
 */
export abstract class PartitionLeases {
  /** The partitions this instance holds now, in order. */
  abstract owned(): readonly number[];
  /** Takes or renews leases; resolves with the partitions held. */
  abstract refresh(): Promise<readonly number[]>;
  /** Gives up every lease (at shutdown), so others take them at their next refresh. */
  abstract release(): Promise<void>;
}

/** The embedded store: one instance, one partition, always held. */
export class SoleLeases extends PartitionLeases {
  private readonly all: readonly number[];
  constructor(layout: KeyLayout) {
    super();
    this.all = Array.from({ length: layout.partitions }, (_, p) => p);
  }
  owned(): readonly number[] {
    return this.all;
  }
  refresh(): Promise<readonly number[]> {
    return Promise.resolve(this.all);
  }
  release(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Leases in Redis, one per group of 16 partitions (`<control>lease:<g>`, value the owner, PX the
 * lease), plus the members seen lately (`<control>lease:members`, owner -> last refresh), which
 * sets each owner's quota: ceil(groups / members). Each refresh renews the owner's leases up to
 * its quota, drops the rest, and takes free ones, starting at a place of its own so newcomers do
 * not all race for group 0. A dead owner's leases lapse after leaseMs; a newcomer gets its share as
 * the others drop to the new quota at their next refresh.
 */
const LEASES = luaScript({
  name: 'pushPartitionLeases',
  keys: ['members'],
  args: { control: 'string', owner: 'string', now: 'number', leaseMs: 'number', groups: 'number', start: 'number', leaving: 'number' },
  body: `
if leaving == 1 then
  redis.call('ZREM', membersKey, owner)
  for g = 0, groups - 1 do
    local key = control .. 'lease:' .. g
    if redis.call('GET', key) == owner then redis.call('DEL', key) end
  end
  return {}
end
redis.call('ZADD', membersKey, now, owner)
redis.call('ZREMRANGEBYSCORE', membersKey, '-inf', '(' .. (now - leaseMs))
redis.call('PEXPIRE', membersKey, leaseMs * 10)
local quota = math.ceil(groups / math.max(1, redis.call('ZCARD', membersKey)))
local held = {}
for i = 0, groups - 1 do
  local g = (start + i) % groups
  local key = control .. 'lease:' .. g
  if redis.call('GET', key) == owner then
    if #held < quota then
      redis.call('PEXPIRE', key, leaseMs)
      held[#held + 1] = g
    else
      redis.call('DEL', key)
    end
  end
end
for i = 0, groups - 1 do
  if #held >= quota then break end
  local g = (start + i) % groups
  if redis.call('SET', control .. 'lease:' .. g, owner, 'NX', 'PX', leaseMs) then held[#held + 1] = g end
end
return held
`,
});

export class RedisPartitionLeases extends PartitionLeases {
  private readonly logger = new Logger(RedisPartitionLeases.name);
  private readonly script: BoundScript<typeof LEASES>;
  private held: readonly number[] = [];
  /** When the leases last taken run out unless renewed. */
  private validUntil = 0;

  constructor(
    redis: RedisClient,
    private readonly layout: KeyLayout,
    private readonly owner: string,
    private readonly clock: Clock,
    /** How long a lease lasts without renewal: three refresh periods. */
    readonly leaseMs: number,
  ) {
    super();
    this.script = LEASES.bind(redis);
  }

  owned(): readonly number[] {
    return this.clock.now() < this.validUntil ? this.held : [];
  }

  async refresh(): Promise<readonly number[]> {
    const now = this.clock.now();
    const groups = (await this.script({
      keys: { members: `${this.layout.control}lease:members` },
      args: {
        control: this.layout.control,
        owner: this.owner,
        now,
        leaseMs: this.leaseMs,
        groups: this.layout.groups,
        start: crc16(this.owner) % this.layout.groups,
        leaving: 0,
      },
    })) as number[];
    this.held = groups
      .map(Number)
      .sort((a, b) => a - b)
      .flatMap((g) => this.layout.partitionsOfGroup(g));
    this.validUntil = now + this.leaseMs;
    return this.held;
  }

  async release(): Promise<void> {
    this.held = [];
    this.validUntil = 0;
    await this.script({
      keys: { members: `${this.layout.control}lease:members` },
      args: { control: this.layout.control, owner: this.owner, now: this.clock.now(), leaseMs: this.leaseMs, groups: this.layout.groups, start: 0, leaving: 1 },
    }).catch((err: Error) => this.logger.warn(`could not give up partition leases: ${err.message}`));
  }
}
