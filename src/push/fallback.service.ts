import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { Clock } from '../common/clock';
import { MetricsService } from '../metrics/metrics.service';
import { NotificationStore } from '../notifications/notification.store';
import { FallbackJob, FallbackResult } from '../notifications/notification.types';
import { PushRegistration, PushSender } from './push.types';

/** A claimed batch of native pushes is this instance's for this long, renewed while it works on it. */
export const FALLBACK_LEASE_MS = 15_000;
/**
 * Pushes of one job (up to DUE_BATCH targets) handed to the providers at once: a 10k fan-out is a
 * few dozen jobs, so the providers' waiting lines (bounded, then `unavailable`) never overflow.
 */
const PUSHES_IN_FLIGHT_PER_JOB = 32;
/** How long a stopping instance waits for its pushes in flight. */
const SHUTDOWN_WAIT_MS = 2_000;
/** Attempts to record a job's outcomes (Redis may be briefly away) before its lease is left to run out. */
const RECORD_ATTEMPTS = 3;

/**
 * Sends the native pushes of the fallback policy (PRODUCT.md "Native push when the socket cannot
 * deliver"). Which target gets one, and when, is decided in the store's due-time index; this
 * only works off the jobs it was handed (leased to this instance), through the providers behind
 * PushSender, and records each target's outcome. A target without a registration is `no_target`.
 * The job is released once its outcomes are stored; if this instance dies first, its lease runs
 * out and another instance sends what has no outcome yet (at least once).
 */
@Injectable()
export class FallbackService implements OnApplicationShutdown {
  private readonly logger = new Logger(FallbackService.name);
  private readonly working = new Map<string, Promise<void>>();

  constructor(
    private readonly store: NotificationStore,
    private readonly sender: PushSender,
    private readonly clock: Clock,
    private readonly metrics: MetricsService,
  ) {}

  /** Starts the jobs (a job this instance is already working on is not started twice). */
  send(jobs: readonly FallbackJob[]): void {
    for (const job of jobs) {
      if (this.working.has(job.key)) continue;
      this.working.set(job.key, this.run(job).finally(() => this.working.delete(job.key)));
    }
  }

  /** Resolves once every job started so far has ended (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.working.size) await Promise.all(this.working.values());
  }

  async onApplicationShutdown(): Promise<void> {
    // Pushes in flight get a moment to finish and be recorded; what is not recorded by then goes
    // to another instance once its lease runs out (a provider retrying for a minute must not hold the drain).
    await Promise.race([this.idle(), new Promise((r) => setTimeout(r, SHUTDOWN_WAIT_MS).unref())]);
  }

  private async run(job: FallbackJob): Promise<void> {
    const renew = setInterval(() => {
      this.store.renewFallback([job.key], this.clock.now() + FALLBACK_LEASE_MS).catch((err: Error) => this.logger.warn(`lease of ${job.key} not renewed: ${err.message}`));
    }, FALLBACK_LEASE_MS / 3);
    renew.unref();
    try {
      const results = await mapLimit(job.targets, PUSHES_IN_FLIGHT_PER_JOB, (t) => this.pushOne(job, t));
      await this.record(job, results);
    } finally {
      clearInterval(renew);
    }
  }

  private async pushOne(job: FallbackJob, target: FallbackJob['targets'][number]): Promise<FallbackResult> {
    const registration = parse(target.registration);
    if (!registration) {
      this.count(job, 'none', 'no_target', 'none');
      return { deviceId: target.deviceId, status: 'no_target', at: this.clock.now() };
    }
    const { payload } = job.notification;
    // The provider may keep trying for what is left of the ttl; a ttl-0 notification is now or never.
    const ttlSeconds = payload.expiresAt ? Math.max(0, Math.ceil((payload.expiresAt - this.clock.now()) / 1000)) : 0;
    const outcome = await this.sender.send(registration, { notification: payload, ttlSeconds }).catch((err: Error) => ({
      status: 'failed' as const,
      provider: registration.provider,
      reason: 'unavailable' as const,
      detail: err.message,
    }));
    const reason = outcome.status === 'failed' ? outcome.reason : undefined;
    this.count(job, outcome.provider, outcome.status, reason ?? 'none');
    return { deviceId: target.deviceId, status: outcome.status, provider: outcome.provider, ...(reason ? { reason } : {}), at: this.clock.now(), registration: target.registration };
  }

  private async record(job: FallbackJob, results: FallbackResult[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.store.recordFallback(job.key, results, true);
        return;
      } catch (err) {
        if (attempt >= RECORD_ATTEMPTS) {
          this.logger.warn(`outcomes of ${job.key} not recorded (another instance sends them again after the lease): ${(err as Error).message}`);
          return;
        }
        await new Promise((r) => setTimeout(r, 500 * attempt).unref());
      }
    }
  }

  private count(job: FallbackJob, provider: string, status: string, reason: string): void {
    this.metrics.pushFallbacks.inc({ trigger: job.trigger, provider, status, reason });
  }
}

/** The stored registration; undefined when there is none (or it is unreadable: treated as none). */
function parse(json: string | undefined): PushRegistration | undefined {
  if (!json) return undefined;
  try {
    return JSON.parse(json) as PushRegistration;
  } catch {
    return undefined;
  }
}

/** `fn` over `items` with at most `limit` running at once; results in input order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
