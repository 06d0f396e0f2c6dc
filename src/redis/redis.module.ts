import { Global, Module } from '@nestjs/common';
import { RedisConnection } from './redis-connection';
import { RedisWatchdog } from './redis-watchdog.service';

@Global()
@Module({ providers: [RedisConnection, RedisWatchdog], exports: [RedisConnection, RedisWatchdog] })
export class RedisModule {}
