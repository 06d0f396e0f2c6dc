import { Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { RedisConnection } from '../redis/redis-connection';
import { HeartbeatPolicy } from './heartbeat-policy';
import { NetworkMetrics } from './network-metrics';
import { MemoryPresenceStore } from './memory-presence.store';
import { PresenceStore } from './presence.store';
import { RedisPresenceStore } from './redis-presence.store';

@Module({
  providers: [
    {
      provide: PresenceStore,
      inject: [AppConfig, RedisConnection],
      useFactory: (config: AppConfig, redis: RedisConnection): PresenceStore =>
        redis.client
          ? new RedisPresenceStore(redis.client, config.redisPrefix, config.deviceRetentionMs, redis.beats ?? redis.client)
          : new MemoryPresenceStore(config.deviceRetentionMs),
    },
    { provide: HeartbeatPolicy, inject: [AppConfig], useFactory: (config: AppConfig) => new HeartbeatPolicy(config.heartbeat, config.heartbeatTtlSlackMs) },
    NetworkMetrics,
  ],
  exports: [PresenceStore, HeartbeatPolicy],
})
export class PresenceModule {}
