import { PushProviderSettings } from '../../config/push-provider-settings';
import { MetricsService } from '../../metrics/metrics.service';
import { PushProviderName } from '../push.types';
import { DeliveryTiming, ProviderDelivery, realTiming } from './provider-delivery';
import { ProviderPushSender } from './provider-push-sender';
import { PushProvider } from './push-provider';
import { ApnsProvider } from './apns.provider';
import { FcmProvider } from './fcm.provider';
import { WebPushProvider } from './web-push.provider';

export interface CreatePushSenderOptions {
  now: () => number;
  /** Replaces the real sleep and jitter (tests). */
  timing?: DeliveryTiming;
  /** Extra CAs trusted by the providers of this sender only (tests; production uses NODE_EXTRA_CA_CERTS). */
  ca?: string;
}

/** Builds the providers that have settings, each behind its own delivery loop. */
export function createPushSender(
  settings: PushProviderSettings,
  metrics: MetricsService,
  options: CreatePushSenderOptions,
): ProviderPushSender {
  const { delivery } = settings;
  const http = { requestTimeoutMs: delivery.requestTimeoutMs, maxSockets: delivery.concurrency, ca: options.ca };
  const providers: PushProvider[] = [];
  if (settings.webpush) providers.push(new WebPushProvider(settings.webpush, http));
  if (settings.apns) providers.push(new ApnsProvider(settings.apns, { ...http, now: options.now }));
  if (settings.fcm) providers.push(new FcmProvider(settings.fcm, { ...http, now: options.now }));
  const timing = options.timing ?? realTiming(options.now);
  const deliveries: Partial<Record<PushProviderName, ProviderDelivery>> = {};
  for (const provider of providers) deliveries[provider.name] = new ProviderDelivery(provider, delivery, timing, metrics);
  return new ProviderPushSender(deliveries, metrics);
}
