import { Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { MemoryPresenceStore } from '../presence/memory-presence.store';
import { PresenceModule } from '../presence/presence.module';
import { PresenceStore } from '../presence/presence.store';
import { RedisConnection } from '../redis/redis-connection';
import { MemoryPushRegistrationStore, PushRegistrationStore, RedisPushRegistrationStore } from './push-registration.store';
import { PushProvidersModule } from './providers/push-providers.module';

/** Native push: where devices registered (PushRegistrationStore) and how to reach them (PushSender). */
@Module({
  imports: [PresenceModule, PushProvidersModule],
  providers: [
    {
      provide: PushRegistrationStore,
      inject: [AppConfig, RedisConnection, PresenceStore],
      useFactory: (config: AppConfig, redis: RedisConnection, presence: PresenceStore): PushRegistrationStore => {
        if (redis.client) return new RedisPushRegistrationStore(redis.client, config.keys);
        if (presence instanceof MemoryPresenceStore) return new MemoryPushRegistrationStore(presence);
        throw new Error('the embedded push registration store needs the embedded presence store');
      },
    },
  ],
  exports: [PushRegistrationStore, PushProvidersModule],
})
export class PushModule {}
