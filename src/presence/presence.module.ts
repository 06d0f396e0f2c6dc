import { Module } from '@nestjs/common';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { EventLog } from '../events/event-log';
import { MemoryEventLog } from '../events/memory-event-log';
import { RedisEventLog } from '../events/redis-event-log';
import { RedisConnection } from '../redis/redis-connection';
import { reportPeriod } from '../gateway/instance-registry.service';
import { HeartbeatPolicy } from './heartbeat-policy';
import { NetworkMetrics } from './network-metrics';
import { MemoryPresenceStore } from './memory-presence.store';
import { PresenceStore } from './presence.store';
import { RedisPresenceStore } from './redis-presence.store';

/** The Redis presence store as the app builds it; the capacity simulation (bench/simulate.mjs) builds it here too. */
export function createRedisPresenceStore(config: AppConfig, redis: RedisConnection): RedisPresenceStore {
  if (!redis.client) throw new Error('the Redis presence store needs a Redis connection');
  return new RedisPresenceStore(redis.client, config.keys, config.deviceRetentionMs, {
    eventRetentionMs: config.eventRetentionMs,
    eventGraceMs: config.presenceEventGraceMs,
    beats: redis.beats ?? redis.client,
    // GET /v1/presence sums one ZCOUNT per partition: at most once a second.
    countCacheMs: 1_000,
    // A connect asks whether a run-out session's instance is alive: the list is read once per report period.
    liveCacheMs: reportPeriod(config.sweepIntervalMs),
  });
}

@Module({
  providers: [
    {
      provide: PresenceStore,
      inject: [AppConfig, RedisConnection],
      useFactory: (config: AppConfig, redis: RedisConnection): PresenceStore =>
        redis.client
          ? createRedisPresenceStore(config, redis)
          : new MemoryPresenceStore(config.deviceRetentionMs, new MemoryEventLog(config.eventRetentionMs), config.presenceEventGraceMs),
    },
    {
      // The log the presence store writes in the same step as each change: read here, never written.
      provide: EventLog,
      inject: [PresenceStore, AppConfig, RedisConnection, Clock],
      // Every partition's stream on a Cluster (config.keys), the one stream otherwise.
      useFactory: (store: PresenceStore, config: AppConfig, redis: RedisConnection, clock: Clock): EventLog =>
        store instanceof MemoryPresenceStore ? store.events : new RedisEventLog(redis.client!, config.keys, config.eventRetentionMs, clock),
    },
    { provide: HeartbeatPolicy, inject: [AppConfig], useFactory: (config: AppConfig) => new HeartbeatPolicy(config.heartbeat, config.heartbeatTtlSlackMs) },
    NetworkMetrics,
  ],
  exports: [PresenceStore, HeartbeatPolicy, EventLog],
})
export class PresenceModule {}
