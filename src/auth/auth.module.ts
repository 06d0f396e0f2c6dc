import { Global, Module } from '@nestjs/common';
import { RedisConnection } from '../redis/redis-connection';
import { AppConfig } from '../config/app-config';
import { MemoryRateLimiter } from './memory-rate-limiter';
import { RateLimiter } from './rate-limiter';
import { RedisRateLimiter } from './redis-rate-limiter';

/** The rate limiter for ApiAuthGuard, global because the guard is instantiated in every module with /v1 controllers. */
@Global()
@Module({
  providers: [
    {
      provide: RateLimiter,
      inject: [AppConfig, RedisConnection],
      useFactory: (config: AppConfig, redis: RedisConnection): RateLimiter =>
        redis.client ? new RedisRateLimiter(redis.client, config.keys) : new MemoryRateLimiter(),
    },
  ],
  exports: [RateLimiter],
})
export class AuthModule {}
