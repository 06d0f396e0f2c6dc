import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { IntervalRegistry } from '../common/interval-registry';
import { Clock } from '../common/clock';
import { PeriodicJob } from '../common/periodic-job';
import { AppConfig } from '../config/app-config';
import { BoundScript, luaScript } from '../redis/lua-script';
import { PartitionLeases } from '../redis/partition-leases';
import { KeyLayout } from '../redis/partitions';
import type { RedisClient } from '../redis/redis-connection';
import { RedisConnection } from '../redis/redis-connection';
import { FLOOR_PERIOD_MS } from './event-log.script';

/**
 * Moves a partition's floor up to `now`, and at least 1 ms at each call; it lives as long as the
 * events it orders. Any floor is a valid promise (an append takes an id above it), so the floor
 * need not wait for the clock: with clocks that run it is `now` at every tick, and with one that
 * stands still (a test's fake clock, or a clock stepped back) the floors still pass an event
 * appended just above them at the next tick, instead of never.
 */
export const ADVANCE_FLOOR = luaScript({
  name: 'pushEventFloor',
  keys: ['floor'],
  args: { now: 'number', ttl: 'number' },
  body: `
local floor = tonumber(redis.call('GET', floorKey) or '0') or 0
local to = math.max(now, floor + 1)
redis.call('SET', floorKey, string.format('%.0f', to), 'PX', ttl)
return to
`,
});

/** The floors of the given partitions, moved to `now`: one small script per partition, sent together. */
export class EventFloors {
  private readonly script: BoundScript<typeof ADVANCE_FLOOR>;

  constructor(
    redis: RedisClient,
    private readonly keys: KeyLayout,
    private readonly ttlMs: number,
  ) {
    this.script = ADVANCE_FLOOR.bind(redis);
  }

  async advance(partitions: readonly number[], now: number): Promise<void> {
    await Promise.all(partitions.map((p) => this.script({ keys: { floor: `${this.keys.at(p)}events:floor` }, args: { now, ttl: this.ttlMs } })));
  }
}

/**
 * Advances `P events:floor` of every partition this instance holds the lease of, to its clock (by
 * 1 ms at least: ADVANCE_FLOOR),
 * every FLOOR_PERIOD_MS (docs/design/sharding.md section 3): appends in p get ids above it, so the
 * lowest floor is a point in log order that no later append can come before, and the pull API
 * reads up to it. Nothing to do with one partition (the pull API reads its one stream to the end)
 * or without Redis. Safe if two instances run it for one partition during a lease handover: a
 * floor only moves up.
 */
@Injectable()
export class EventFloorsService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly floors?: EventFloors;
  private readonly job: PeriodicJob<void>;

  constructor(
    private readonly leases: PartitionLeases,
    private readonly clock: Clock,
    config: AppConfig,
    redis: RedisConnection,
    scheduler: IntervalRegistry,
  ) {
    if (redis.client && config.keys.partitions > 1) {
      // Floors outlive the events they order (and the idle stretch of a partition between them).
      this.floors = new EventFloors(redis.client, config.keys, config.eventRetentionMs + 60_000);
    }
    this.job = new PeriodicJob('event-floors', scheduler, new Logger(EventFloorsService.name), 'event log floor update failed', () => this.tick());
  }

  onApplicationBootstrap(): void {
    if (this.floors) this.job.start(FLOOR_PERIOD_MS);
  }

  onApplicationShutdown(): void {
    this.job.stop();
  }

  async tick(): Promise<void> {
    await this.floors?.advance(this.leases.owned(), this.clock.now());
  }
}
