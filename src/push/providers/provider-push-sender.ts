import { OnApplicationShutdown } from '@nestjs/common';
import { MetricsService } from '../../metrics/metrics.service';
import { PushMessage, PushOutcome, PushProviderName, PushRegistration, PushSender } from '../push.types';
import { errorMessage } from './http-outcome';
import { ProviderDelivery } from './provider-delivery';

/** Routes each push to the provider its registration names; a provider without settings answers `not_configured`. */
export class ProviderPushSender extends PushSender implements OnApplicationShutdown {
  constructor(
    private readonly deliveries: Partial<Record<PushProviderName, ProviderDelivery>>,
    private readonly metrics: MetricsService,
  ) {
    super();
  }

  enabled(provider: PushProviderName): boolean {
    return this.deliveries[provider] !== undefined;
  }

  async send(registration: PushRegistration, message: PushMessage): Promise<PushOutcome> {
    const provider = registration.provider;
    const delivery = this.deliveries[provider];
    if (!delivery) {
      this.metrics.nativePushes.inc({ provider, result: 'not_configured' });
      return { status: 'failed', provider, reason: 'not_configured', detail: `${provider} has no settings on this gateway` };
    }
    try {
      return await delivery.send(registration, message);
    } catch (error) {
      // The contract: send resolves with an outcome and never rejects.
      return { status: 'failed', provider, reason: 'unavailable', detail: errorMessage(error) };
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.allSettled(Object.values(this.deliveries).map((d) => d.close()));
  }
}
