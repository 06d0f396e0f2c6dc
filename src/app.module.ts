import { DynamicModule, Module } from '@nestjs/common';
import { IntervalsModule } from './common/interval-registry';
import { AuthModule } from './auth/auth.module';
import { Clock } from './common/clock';
import { AppConfig } from './config/app-config';
import { ConfigModule } from './config/config.module';
import { ConsoleModule } from './console/console.module';
import { DemoModule } from './demo/demo.module';
import { AsyncApiController } from './docs/asyncapi.controller';
import { DevicesModule } from './devices/devices.module';
import { EventsModule } from './events/events.module';
import { WebhooksModule } from './events/webhooks/webhooks.module';
import { GatewayModule } from './gateway/gateway.module';
import { HealthModule } from './health/health.module';
import { LoadModule } from './load/load.module';
import { MetricsModule } from './metrics/metrics.module';
import { NotificationsModule } from './notifications/notifications.module';
import { RedisModule } from './redis/redis.module';

@Module({})
export class AppModule {
  static forRoot(config: AppConfig, clock: Clock): DynamicModule {
    return {
      module: AppModule,
      controllers: [AsyncApiController],
      imports: [
        ConfigModule.forRoot(config, clock),
        IntervalsModule,
        RedisModule,
        AuthModule,
        LoadModule,
        MetricsModule,
        GatewayModule,
        NotificationsModule,
        DevicesModule,
        EventsModule,
        WebhooksModule,
        HealthModule,
        ConsoleModule,
        DemoModule.register(config.demo.enabled),
      ],
    };
  }
}
