import { Logger, Module } from '@nestjs/common';
import { Clock } from '../../common/clock';
import { AppConfig } from '../../config/app-config';
import { MetricsService } from '../../metrics/metrics.service';
import { PUSH_PROVIDERS, PushSender } from '../push.types';
import { createPushSender } from './create-push-sender';

/** Provides `PushSender`: Web Push, APNs and FCM, each on when its settings are given. */
@Module({
  providers: [
    {
      provide: PushSender,
      inject: [AppConfig, MetricsService, Clock],
      useFactory: (config: AppConfig, metrics: MetricsService, clock: Clock) => {
        const sender = createPushSender(config.pushProviders, metrics, { now: () => clock.now() });
        const on = PUSH_PROVIDERS.filter((p) => sender.enabled(p));
        new Logger('PushProviders').log(`native push providers on: ${on.length ? on.join(', ') : 'none'}`);
        return sender;
      },
    },
  ],
  exports: [PushSender],
})
export class PushProvidersModule {}
