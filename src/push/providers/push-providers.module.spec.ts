import { Test } from '@nestjs/testing';
import * as webpush from 'web-push';
import { notification } from '../../../test/support/push/kit';
import { SystemClock } from '../../common/clock';
import { loadConfig } from '../../config/app-config';
import { ConfigModule } from '../../config/config.module';
import { MetricsModule } from '../../metrics/metrics.module';
import { PushSender } from '../push.types';
import { ProviderPushSender } from './provider-push-sender';
import { PushProvidersModule } from './push-providers.module';

describe('PushProvidersModule', () => {
  it('provides the PushSender the configuration describes, and closes it when the app closes', async () => {
    const vapid = webpush.generateVAPIDKeys();
    const config = loadConfig({
      API_KEYS: 'k'.repeat(16),
      DEVICE_JWT_SECRET: 'x'.repeat(32),
      WEBPUSH_VAPID_PUBLIC_KEY: vapid.publicKey,
      WEBPUSH_VAPID_PRIVATE_KEY: vapid.privateKey,
      WEBPUSH_SUBJECT: 'mailto:ops@example.com',
    });
    const moduleRef = await Test.createTestingModule({
      imports: [ConfigModule.forRoot(config, new SystemClock()), MetricsModule, PushProvidersModule],
    }).compile();
    const sender = moduleRef.get(PushSender);
    expect(sender).toBeInstanceOf(ProviderPushSender);
    expect([sender.enabled('webpush'), sender.enabled('apns'), sender.enabled('fcm')]).toEqual([true, false, false]);
    const outcome = await sender.send({ provider: 'fcm', token: 't' }, { notification: notification(), ttlSeconds: 60 });
    expect(outcome).toMatchObject({ status: 'failed', provider: 'fcm', reason: 'not_configured' });
    const shutdown = jest.spyOn(sender as ProviderPushSender, 'onApplicationShutdown');
    await moduleRef.close();
    expect(shutdown).toHaveBeenCalledTimes(1);
  });
});
