import { Logger } from '@nestjs/common';
import { Webhook } from 'standardwebhooks';
import { Clock } from '../../common/clock';
import { MetricsService } from '../../metrics/metrics.service';
import { EventEnvelope, eventIdTime } from '../event.types';
import { EventTail } from './event-tail';
import { parseRetryAfter } from '../../common/retry-after';
import { afterFailure } from './retry-policy';
import { WebhookSender } from './webhook-sender';
import { Claim, Settlement, WebhookQueue } from './webhook-queue';

/** Timings of the delivery loops; tests may shorten them, production keeps these. */
export interface DispatcherTimings {
  /** The intake lease: another instance takes the intake over this long after its holder died. */
  intakeLeaseMs: number;
  /** A claim's lease, renewed every third of it while the POST runs: a dead instance's events move on after it. */
  claimLeaseMs: number;
  /** How often an idle instance looks for due events that another instance queued. */
  idlePollMs: number;
  /** How often the backlog age is measured. */
  backlogEveryMs: number;
}

export const DEFAULT_TIMINGS: DispatcherTimings = { intakeLeaseMs: 5_000, claimLeaseMs: 6_000, idlePollMs: 100, backlogEveryMs: 5_000 };

export interface DispatcherOptions {
  url: string;
  /** The URL as logs and metrics show it (no credentials, no query). */
  label: string;
  /** Unique per process start: leases and claims are held in its name. */
  owner: string;
  secret: string;
  matches: (type: string) => boolean;
  retryWindowMs: number;
  timeoutMs: number;
  /** Events in flight to this URL from this instance at most (each of a different device). */
  concurrency: number;
  timings?: DispatcherTimings;
}

/** Events of one device go in order; events without a device (user.*) in order per user. */
export function orderKey(event: EventEnvelope): string {
  const { deviceId, userId } = event.data;
  if (typeof deviceId === 'string') return `d:${deviceId}`;
  if (typeof userId === 'string') return `u:${userId}`;
  return '-';
}

/**
 * Delivers the event log to one webhook URL. Three loops: the intake copies new log entries into
 * the URL's queue while this instance holds the intake lease (one instance at a time, so queue
 * order is log order); the delivery loop takes due devices (on every instance) and POSTs their
 * head events, up to `concurrency` at once; the lease loop renews the claims in flight and
 * measures the backlog. A failing device only pushes its own next attempt back; a failing URL
 * only fills its own queue.
 */
export class WebhookDispatcher {
  private readonly logger = new Logger('Webhooks');
  private readonly signer: Webhook;
  private readonly target: URL;
  private readonly timings: DispatcherTimings;
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly inflight = new Map<string, Claim>();
  private settling: Settlement[] = [];
  private settleQueued = false;
  private flushing = 0;
  private woken = false;
  private wakeUp?: () => void;
  private readonly sleepers = new Set<() => void>();
  private claimSeq = 0;
  private disabled = false;
  private failing = false;
  private drops = { count: 0, loggedAt: 0 };
  private lastError = { message: '', at: 0 };

  constructor(
    private readonly options: DispatcherOptions,
    private readonly queue: WebhookQueue,
    private readonly tail: EventTail,
    private readonly sender: WebhookSender,
    private readonly metrics: MetricsService,
    private readonly clock: Clock,
    private readonly random: () => number = Math.random,
  ) {
    this.signer = new Webhook(options.secret);
    this.target = new URL(options.url);
    this.timings = options.timings ?? DEFAULT_TIMINGS;
    metrics.webhookDisabled.set({ url: options.label }, 0);
    metrics.webhookBacklogAge.set({ url: options.label }, 0);
  }

  /** Re-enables the URL (a start clears a 410 everywhere), then runs the loops. */
  async start(): Promise<void> {
    await this.queue.setDisabled(false);
    // Before the app serves anything: a URL seen for the first time gets every event from here on.
    await this.queue.cursor().catch((err: Error) => this.warn(`cursor: ${err.message} (the intake sets it when it starts)`));
    this.running = true;
    this.loops = [this.intakeLoop(), this.deliveryLoop(), this.leaseLoop()];
  }

  /** Stops taking events; waits up to `graceMs` for attempts in flight (the rest are taken over by others after their lease). */
  async stop(graceMs: number): Promise<void> {
    this.running = false;
    for (const sleeper of [...this.sleepers]) sleeper();
    const deadline = Date.now() + graceMs;
    while (this.inflight.size > 0 && Date.now() < deadline) await sleep(20);
    await this.flushSettles();
  }

  /** No attempt in flight and no outcome waiting to be stored (tests wait for it before moving their clock). */
  get idle(): boolean {
    return this.inflight.size === 0 && this.settling.length === 0 && this.flushing === 0;
  }

  /** Resolves when the loops have ended (the intake's blocked read ends when its tail is closed). */
  async stopped(): Promise<void> {
    await Promise.allSettled(this.loops);
  }

  private async intakeLoop(): Promise<void> {
    const owner = this.options.owner;
    let cursor: string | undefined;
    let heldAt = -Infinity;
    while (this.running) {
      try {
        const now = this.clock.now();
        if (this.disabled) {
          // A disabled URL queues nothing: its events wait in the log for the next start.
          cursor = undefined;
          await this.pause(1_000, false);
          continue;
        }
        if (cursor === undefined || now - heldAt >= this.timings.intakeLeaseMs / 5) {
          if (!(await this.queue.holdIntake(owner, now, this.timings.intakeLeaseMs))) {
            cursor = undefined;
            await this.pause(this.timings.intakeLeaseMs / 5, false);
            continue;
          }
          heldAt = now;
          cursor ??= await this.queue.cursor();
        }
        const events = await this.tail.next(cursor, 1_000, Math.max(100, this.timings.intakeLeaseMs / 5));
        if (events.length === 0 || !this.running) continue;
        const last = events[events.length - 1]!.id;
        const queued = events.filter((e) => this.options.matches(e.type)).map((e) => ({ key: orderKey(e), id: e.id, body: JSON.stringify(e) }));
        const result = await this.queue.enqueue(owner, last, queued, this.clock.now());
        if (!result.held) {
          cursor = undefined;
          continue;
        }
        cursor = last;
        if (result.refused > 0) {
          this.metrics.webhooksDropped.inc({ url: this.options.label }, result.refused);
          this.noteDrop(`${result.refused} new events`, result.refused, 'because the queue is full');
        }
        if (queued.length > 0) this.wake();
      } catch (err) {
        if (!this.running) break;
        this.warn(`intake: ${(err as Error).message}`);
        cursor = undefined;
        await this.pause(1_000, false);
      }
    }
  }

  private async deliveryLoop(): Promise<void> {
    while (this.running) {
      const free = this.options.concurrency - this.inflight.size;
      if (free <= 0) {
        await this.pause(this.timings.idlePollMs);
        continue;
      }
      const now = this.clock.now();
      try {
        const result = await this.queue.claim(`${this.options.owner}:${++this.claimSeq}`, now, free, now + this.timings.claimLeaseMs);
        this.noteDisabled(result.disabled);
        for (const claim of result.claims) void this.attempt(claim);
        if (result.claims.length < free) {
          const wait = result.nextDue === undefined ? this.timings.idlePollMs : Math.min(this.timings.idlePollMs, result.nextDue - now);
          if (wait > 0) await this.pause(wait);
        }
      } catch (err) {
        if (!this.running) break;
        this.warn(`claim: ${(err as Error).message}`);
        await this.pause(1_000);
      }
    }
  }

  private async leaseLoop(): Promise<void> {
    let backlogAt = -Infinity;
    while (this.running) {
      await this.pause(this.timings.claimLeaseMs / 3, false);
      if (!this.running) break;
      const now = this.clock.now();
      try {
        await this.queue.renew([...this.inflight.values()], now + this.timings.claimLeaseMs);
        if (now - backlogAt >= this.timings.backlogEveryMs) {
          backlogAt = now;
          const { oldest } = await this.queue.backlog();
          this.metrics.webhookBacklogAge.set({ url: this.options.label }, oldest === undefined ? 0 : Math.max(0, now - oldest) / 1000);
        }
      } catch (err) {
        this.warn(`lease renewal: ${(err as Error).message}`);
      }
    }
  }

  private async attempt(claim: Claim): Promise<void> {
    this.inflight.set(claim.token, claim);
    const label = this.options.label;
    try {
      const now = this.clock.now();
      const headers = {
        'webhook-id': claim.id,
        'webhook-timestamp': String(Math.floor(now / 1000)),
        'webhook-signature': this.signer.sign(claim.id, new Date(now), claim.body),
      };
      const result = await this.sender.post(this.target, headers, claim.body, this.options.timeoutMs);
      const status = result.status;
      if (status !== undefined && status >= 200 && status < 300) {
        this.metrics.webhooksDelivered.inc({ url: label });
        if (this.failing) this.logger.log(`webhook ${label} accepts events again`);
        this.failing = false;
        this.settle(claim, { kind: 'done' });
        return;
      }
      const reason = status !== undefined ? String(status) : result.error?.startsWith('no answer within') ? 'timeout' : 'error';
      this.metrics.webhookFailures.inc({ url: label, reason });
      if (status === 410) {
        // The receiver says it is gone: stop everywhere; the event stays first in line for the next start.
        this.settle(claim, { kind: 'retry', at: this.clock.now(), attempts: claim.attempts });
        await this.queue.setDisabled(true);
        this.noteDisabled(true);
        return;
      }
      if (!this.failing) this.logger.warn(`webhook ${label} failing (${status !== undefined ? `answered ${status}` : result.error}); retrying with backoff`);
      this.failing = true;
      const end = this.clock.now();
      const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(result.retryAfter, end) : undefined;
      const attempts = claim.attempts + 1;
      const next = afterFailure({ attempts, eventTime: eventIdTime(claim.id), retryAfterMs }, end, this.options.retryWindowMs, this.random());
      if (next.kind === 'retry') {
        this.settle(claim, { kind: 'retry', at: next.at, attempts });
      } else {
        this.metrics.webhooksDropped.inc({ url: label });
        this.noteDrop(`event ${claim.id}`, 1, `after ${attempts} attempts`);
        this.settle(claim, { kind: 'done' });
      }
    } catch (err) {
      // Nothing settled: the claim's lease runs out and the event is attempted again.
      this.warn(`attempt: ${(err as Error).message}`);
    } finally {
      this.inflight.delete(claim.token);
      this.wake();
    }
  }

  /** Outcomes of one event-loop turn go to the queue together (one Redis round trip). */
  private settle(claim: Claim, outcome: Settlement['outcome']): void {
    this.settling.push({ key: claim.key, token: claim.token, id: claim.id, outcome });
    if (this.settleQueued) return;
    this.settleQueued = true;
    setImmediate(() => void this.flushSettles());
  }

  private async flushSettles(): Promise<void> {
    this.settleQueued = false;
    const batch = this.settling;
    this.settling = [];
    if (batch.length === 0) return;
    this.flushing++;
    try {
      await this.queue.settle(batch, this.clock.now());
      this.wake();
    } catch (err) {
      // Unsettled claims run out and are attempted again: a resend, never a loss.
      this.warn(`settle: ${(err as Error).message}`);
    } finally {
      this.flushing--;
    }
  }

  private noteDisabled(disabled: boolean): void {
    if (disabled && !this.disabled) {
      this.logger.error(`webhook ${this.options.label} answered 410 Gone: disabled on every instance until the gateway is next started`);
    }
    this.disabled = disabled;
    this.metrics.webhookDisabled.set({ url: this.options.label }, disabled ? 1 : 0);
  }

  private noteDrop(what: string, count: number, why: string): void {
    this.drops.count += count;
    const now = this.clock.now();
    if (now - this.drops.loggedAt < 60_000) return;
    this.logger.warn(`webhook ${this.options.label}: dropped ${what} ${why} (${this.drops.count} dropped since the last such line)`);
    this.drops = { count: 0, loggedAt: now };
  }

  /** One line per distinct problem per 10 s: a Redis outage must not write a line per event. */
  private warn(message: string): void {
    const now = Date.now();
    if (message === this.lastError.message && now - this.lastError.at < 10_000) return;
    this.lastError = { message, at: now };
    this.logger.warn(`webhook ${this.options.label}: ${message}`);
  }

  private wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  /** Waits `ms`, or until woken (new events, a free slot, a settle) when `wakeable`, or until stopped. */
  private pause(ms: number, wakeable = true): Promise<void> {
    if (!this.running) return Promise.resolve();
    if (wakeable && this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        if (wakeable) {
          this.woken = false;
          if (this.wakeUp === done) this.wakeUp = undefined;
        }
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.sleepers.add(done);
      if (wakeable) this.wakeUp = done;
    });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
