import { Module } from '@nestjs/common';
import { ChannelModule } from '../channel/channel.module';
import { MemoryPresenceStore } from '../presence/memory-presence.store';
import { PresenceModule } from '../presence/presence.module';
import { PresenceStore } from '../presence/presence.store';
import { RedisConnection } from '../redis/redis-connection';
import { AppConfig } from '../config/app-config';
import { DeliveryService } from './delivery.service';
import { MemoryNotificationStore } from './memory-notification.store';
import { NotificationStore } from './notification.store';
import { NotificationsController } from './notifications.controller';
import { NotificationsService } from './notifications.service';
import { RedisNotificationStore } from './redis-notification.store';
import { PushModule } from '../push/push.module';
import { FallbackService } from '../push/fallback.service';
import { DeadlineSweeper } from './deadline-sweeper.service';

/** The Redis notification store as the app builds it; the capacity simulation (bench/simulate.mjs) builds it here too. */
export function createRedisNotificationStore(config: AppConfig, redis: RedisConnection): RedisNotificationStore {
  if (!redis.client) throw new Error('the Redis notification store needs a Redis connection');
  return new RedisNotificationStore(redis.client, config.keys, config.eventRetentionMs);
}

@Module({
  imports: [PresenceModule, ChannelModule, PushModule],
  controllers: [NotificationsController],
  providers: [
    {
      provide: NotificationStore,
      inject: [AppConfig, RedisConnection, PresenceStore],
      useFactory: (config: AppConfig, redis: RedisConnection, presence: PresenceStore): NotificationStore => {
        if (redis.client) return createRedisNotificationStore(config, redis);
        // Embedded mode: who is online is decided in the same process step as the inbox write.
        if (presence instanceof MemoryPresenceStore) return new MemoryNotificationStore(presence);
        throw new Error('the embedded notification store needs the embedded presence store');
      },
    },
    NotificationsService,
    DeliveryService,
    FallbackService,
    DeadlineSweeper,
  ],
  exports: [DeliveryService, DeadlineSweeper, FallbackService],
})
export class NotificationsModule {}
