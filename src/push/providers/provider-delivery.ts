import { PushDeliverySettings } from '../../config/push-provider-settings';
import { MetricsService } from '../../metrics/metrics.service';
import { PushMessage, PushOutcome, PushRegistration } from '../push.types';
import { ConcurrencyLimit } from './concurrency-limit';
import { errorMessage } from './http-outcome';
import { AttemptResult, PushProvider } from './push-provider';
import { backoffMs } from './retry-after';

/** Time as the retry loop sees it; injected so tests can check the waits without waiting. */
export interface DeliveryTiming {
  now(): number;
  sleep(ms: number): Promise<void>;
  /** In [0, 1): the backoff's jitter. */
  random(): number;
}

export const realTiming = (now: () => number): DeliveryTiming => ({
  now,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  random: Math.random,
});

/** Pushes waiting for a free slot per provider before new ones fail fast as `unavailable`. */
const MAX_WAITING = 10_000;

/**
 * Sends through one provider: at most `concurrency` requests at once (a slot is held only during a
 * request, never while waiting to retry), retries with exponential backoff and jitter, honouring
 * `Retry-After`, until `maxAttempts` or `retryBudgetMs` runs out, and counts every attempt and outcome.
 */
export class ProviderDelivery {
  private readonly limit: ConcurrencyLimit;

  constructor(
    private readonly provider: PushProvider,
    private readonly settings: PushDeliverySettings,
    private readonly timing: DeliveryTiming,
    private readonly metrics: MetricsService,
  ) {
    this.limit = new ConcurrencyLimit(settings.concurrency, MAX_WAITING);
  }

  get inFlight(): number {
    return this.limit.inFlight;
  }

  /** Pushes waiting for a free slot. */
  get queued(): number {
    return this.limit.queued;
  }

  async send(registration: PushRegistration, message: PushMessage): Promise<PushOutcome> {
    const outcome = await this.deliver(registration, message);
    this.metrics.nativePushes.inc({
      provider: this.provider.name,
      result: outcome.status === 'sent' ? 'sent' : outcome.reason,
    });
    return outcome;
  }

  close(): Promise<void> {
    return this.provider.close();
  }

  private async deliver(registration: PushRegistration, message: PushMessage): Promise<PushOutcome> {
    const provider = this.provider.name;
    const start = this.timing.now();
    const { maxAttempts, retryBaseMs, retryBudgetMs } = this.settings;
    for (let attempt = 1; ; attempt += 1) {
      const elapsed = this.timing.now() - start;
      // A retry carries what is left of the ttl, so a late copy never outlives the notification.
      const ttlSeconds = Math.max(0, message.ttlSeconds - Math.floor(elapsed / 1000));
      const ran = await this.limit.run(() => this.attempt(registration, { ...message, ttlSeconds }));
      if (!ran) return { status: 'failed', provider, reason: 'unavailable', detail: 'too many pushes waiting for this provider' };
      const result = ran.value;
      this.metrics.nativePushAttempts.inc({ provider, result: result.kind });
      if (result.kind === 'sent') return { status: 'sent', provider };
      if (result.kind !== 'retry') return { status: 'failed', provider, reason: result.kind, detail: result.detail };

      const giveUp = (why: string): PushOutcome => ({
        status: 'failed',
        provider,
        reason: 'unavailable',
        detail: `${result.detail} (attempt ${attempt}; ${why})`,
      });
      if (attempt >= maxAttempts) return giveUp('no attempts left');
      const delay = result.retryAfterMs ?? backoffMs(attempt, retryBaseMs, this.timing.random);
      const retryAt = this.timing.now() - start + delay;
      if (retryAt > retryBudgetMs) return giveUp(`a retry in ${delay} ms would pass the retry budget`);
      // An immediate retry (a renewed credential) is still "now", even for a ttl-0 notification.
      if (delay > 0 && retryAt > message.ttlSeconds * 1000) return giveUp(`the notification expires before a retry in ${delay} ms`);
      await this.timing.sleep(delay);
    }
  }

  private async attempt(registration: PushRegistration, message: PushMessage): Promise<AttemptResult> {
    try {
      return await this.provider.attempt(registration, message);
    } catch (error) {
      // Providers map the errors they know; anything else is treated as passing trouble.
      return { kind: 'retry', detail: errorMessage(error) };
    }
  }
}
