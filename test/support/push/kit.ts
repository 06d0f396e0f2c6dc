import { PushDeliverySettings } from '../../../src/config/push-provider-settings';
import { NotificationPayload } from '../../../src/channel/socket-events';
import { MetricsService } from '../../../src/metrics/metrics.service';
import { DeliveryTiming } from '../../../src/push/providers/provider-delivery';

/** Spec helpers shared by the provider specs (not loaded by the app). */

/** Small retry settings so specs run in milliseconds; the waits themselves are recorded, not slept. */
export const testDelivery = (over: Partial<PushDeliverySettings> = {}): PushDeliverySettings => ({
  concurrency: 4,
  maxAttempts: 3,
  retryBaseMs: 100,
  retryBudgetMs: 60_000,
  requestTimeoutMs: 5_000,
  ...over,
});

/** Real time, but every retry wait is recorded and shortened to a tick. */
export function recordingTiming(): DeliveryTiming & { sleeps: number[] } {
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => Date.now(),
    sleep: (ms) => {
      sleeps.push(ms);
      return new Promise((resolve) => setImmediate(resolve));
    },
    random: () => 0.5,
  };
}

export function notification(over: Partial<NotificationPayload> = {}): NotificationPayload {
  return {
    id: '7b0c3f0e-1f5e-4c1e-9d2a-2f8b8f1d9c11',
    data: { orderId: 42, items: ['tea', 'cake'], nested: { ok: true } },
    title: 'Order shipped',
    body: 'Your order #42 is on its way',
    createdAt: 1_790_000_000_000,
    ...over,
  };
}

/** The value of a counter for one label set. */
export async function counter(metrics: MetricsService, name: string, labels: Record<string, string>): Promise<number> {
  const metric = metrics.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  const hit = values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val));
  return hit?.value ?? 0;
}
