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

@Module({
  imports: [PresenceModule, ChannelModule, PushModule],
  controllers: [NotificationsController],
  providers: [
    {
      provide: NotificationStore,
      inject: [AppConfig, RedisConnection, PresenceStore],
      useFactory: (config: AppConfig, redis: RedisConnection, presence: PresenceStore): NotificationStore => {
        if (redis.client) return new RedisNotificationStore(redis.client, config.redisPrefix, config.eventRetentionMs);
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
