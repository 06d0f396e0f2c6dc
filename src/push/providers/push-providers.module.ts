import { Module } from '@nestjs/common';
import { Clock } from '../../common/clock';
import { AppConfig } from '../../config/app-config';
import { MetricsService } from '../../metrics/metrics.service';
import { PushSender } from '../push.types';
import { createPushSender } from './create-push-sender';

/** Provides `PushSender`: Web Push, APNs and FCM, each on when its settings are given. */
@Module({
  providers: [
    {
      provide: PushSender,
      inject: [AppConfig, MetricsService, Clock],
      useFactory: (config: AppConfig, metrics: MetricsService, clock: Clock) =>
        createPushSender(config.pushProviders, metrics, { now: () => clock.now() }),
    },
  ],
  exports: [PushSender],
})
export class PushProvidersModule {}
