import { Global, Module } from '@nestjs/common';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { PartitionLeaseKeeper, leaseRefreshMs } from './partition-lease-keeper.service';
import { PartitionLeases, RedisPartitionLeases, SoleLeases } from './partition-leases';
import { DuePartitions } from './due-partitions';
import { InstanceMailbox } from './instance-mailbox';
import { RedisConnection } from './redis-connection';
import { RedisWatchdog } from './redis-watchdog.service';

@Global()
@Module({
  providers: [
    RedisConnection,
    InstanceMailbox,
    RedisWatchdog,
    {
      provide: PartitionLeases,
      inject: [AppConfig, RedisConnection, Clock],
      useFactory: (config: AppConfig, redis: RedisConnection, clock: Clock): PartitionLeases =>
        redis.client
          ? new RedisPartitionLeases(redis.client, config.keys, config.instanceId, clock, 3 * leaseRefreshMs(config))
          : new SoleLeases(config.keys),
    },
    {
      provide: DuePartitions,
      inject: [AppConfig, RedisConnection],
      useFactory: (config: AppConfig, redis: RedisConnection): DuePartitions => new DuePartitions(redis.client ?? undefined, config.keys),
    },
    PartitionLeaseKeeper,
  ],
  exports: [RedisConnection, InstanceMailbox, RedisWatchdog, PartitionLeases, DuePartitions],
})
export class RedisModule {}
