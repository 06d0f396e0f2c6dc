import { Logger } from '@nestjs/common';
import { Webhook } from 'standardwebhooks';
import { Clock } from '../../common/clock';
import { MetricsService } from '../../metrics/metrics.service';
import { PartitionLeases } from '../../redis/partition-leases';
import { EventLog } from '../event-log';
import { EventEnvelope, eventIdTime } from '../event.types';
import { parseRetryAfter } from '../../common/retry-after';
import { afterFailure } from './retry-policy';
import { WebhookSender } from './webhook-sender';
import { EventTail } from './event-tail';
import { Claim, Settlement, WebhookQueue, groupOf } from './webhook-queue';

/** Timings of the delivery loops; tests may shorten them, production keeps these. */
export interface DispatcherTimings {
  /** A claim's lease, renewed every third of it while the POST runs: a dead instance's events move on after it. */
  claimLeaseMs: number;
  /** Most time between two claims in a group with nothing due (a handover may leave due keys this instance did not queue). */
  idlePollMs: number;
  /** Most time between two reads of a partition stream that had nothing new (the wait doubles from 10 ms up to it). */
  intakePollMs: number;
  /** How often the backlog age is measured. */
  backlogEveryMs: number;
}

export const DEFAULT_TIMINGS: DispatcherTimings = { claimLeaseMs: 6_000, idlePollMs: 250, intakePollMs: 250, backlogEveryMs: 5_000 };

/** How long a read of the `disabled` mark is reused. */
const DISABLED_CACHE_MS = 1_000;

export interface DispatcherOptions {
  url: string;
  /** The URL as logs and metrics show it (no credentials, no query). */
  label: string;
  /** Unique per process start: claims are held in its name. */
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

/** Per partition: where its copy stands and when to read its stream next. */
interface PartitionIntake {
  cursor?: string;
  wait: number;
  dueAt: number;
}

/**
 * Delivers the event log to one webhook URL. Three loops, each over the partitions this instance
 * holds the lease of (PartitionLeases: groups of 16, one partition with one Redis): the intake
 * copies each partition's new stream entries into the URL's queue of its group (a CAS on the
 * partition's cursor, so a handover never copies twice or skips; a partition with nothing new is
 * read again after 10 ms doubling up to `intakePollMs`, or waited on by a blocking read where the
 * log is one stream); the delivery loop takes due keys of its
 * groups and POSTs their head events, up to `concurrency` at once; the lease loop renews the
 * claims in flight and measures the backlog of its groups. A device's events come from its
 * partition's stream, in order, so they are delivered in order. A failing device only pushes its
 * own next attempt back; a failing URL only fills its own queue.
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
  private intakeWoken = false;
  private wakeIntake?: () => void;
  private readonly sleepers = new Set<() => void>();
  private claimSeq = 0;
  private disabled = false;
  private disabledAt = -Infinity;
  private failing = false;
  private drops = { count: 0, loggedAt: 0 };
  private lastError = { message: '', at: 0 };
  private readonly intake = new Map<number, PartitionIntake>();
  /** Group -> when (Date.now()) to look for due keys there again; absent: at once. */
  private readonly groupDue = new Map<number, number>();
  private stopAppended?: () => void;

  constructor(
    private readonly options: DispatcherOptions,
    private readonly queue: WebhookQueue,
    private readonly log: EventLog,
    private readonly leases: PartitionLeases,
    private readonly sender: WebhookSender,
    private readonly metrics: MetricsService,
    private readonly clock: Clock,
    private readonly random: () => number = Math.random,
    /** Calls back after each append, where the log can (the embedded one): the intake reads at once. */
    private readonly onAppend?: (listener: () => void) => () => void,
    /** A blocking reader, where the log is one stream (a single Redis): the intake waits on it instead of polling. */
    private readonly tail?: EventTail,
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
    this.disabledAt = Date.now();
    // Before the app serves anything: a URL seen for the first time gets every event from here on,
    // in every partition (whoever holds it; a cursor already stored is kept).
    const all = Array.from({ length: this.log.partitions }, (_, p) => p);
    await Promise.all(all.map((p) => this.queue.cursor(p, () => this.log.lastEntry(p)))).catch((err: Error) =>
      this.warn(`cursor: ${err.message} (the intake sets it when it starts)`),
    );
    this.running = true;
    this.stopAppended = this.onAppend?.(() => this.nudgeIntake());
    this.loops = [this.intakeLoop(), this.deliveryLoop(), this.leaseLoop()];
  }

  /** Stops taking events; waits up to `graceMs` for attempts in flight (the rest are taken over by others after their lease). */
  async stop(graceMs: number): Promise<void> {
    this.running = false;
    this.stopAppended?.();
    for (const sleeper of [...this.sleepers]) sleeper();
    const deadline = Date.now() + graceMs;
    while (this.inflight.size > 0 && Date.now() < deadline) await sleep(20);
    await this.flushSettles();
  }

  /** No attempt in flight and no outcome waiting to be stored (tests wait for it before moving their clock). */
  get idle(): boolean {
    return this.inflight.size === 0 && this.settling.length === 0 && this.flushing === 0;
  }

  /** Resolves when the loops have ended (the intake's blocked read, if any, ends when its tail is closed). */
  async stopped(): Promise<void> {
    await Promise.allSettled(this.loops);
  }

  /** The 410 mark, shared by every instance, read at most every DISABLED_CACHE_MS. */
  private async isDisabled(): Promise<boolean> {
    if (Date.now() - this.disabledAt >= DISABLED_CACHE_MS) {
      this.disabledAt = Date.now();
      this.noteDisabled(await this.queue.isDisabled());
    }
    return this.disabled;
  }

  private async intakeLoop(): Promise<void> {
    while (this.running) {
      try {
        if (await this.isDisabled()) {
          // A disabled URL queues nothing: its events wait in the log for the next start.
          this.intake.clear();
          await this.pause(1_000, false);
          continue;
        }
        const owned = this.leases.owned();
        const held = new Set(owned);
        // A partition given up is read from its stored cursor when held again (another instance moved it meanwhile).
        for (const p of [...this.intake.keys()]) if (!held.has(p)) this.intake.delete(p);
        const now = Date.now();
        const due = owned.filter((p) => (this.intake.get(p)?.dueAt ?? 0) <= now);
        await Promise.all(due.map((p) => this.copy(p)));
        let next = now + this.timings.intakePollMs;
        for (const p of owned) next = Math.min(next, this.intake.get(p)?.dueAt ?? 0);
        if (next > Date.now()) await this.pauseIntake(next - Date.now());
      } catch (err) {
        if (!this.running) break;
        this.warn(`intake: ${(err as Error).message}`);
        await this.pause(1_000, false);
      }
    }
  }

  /** Copies partition p's new entries into the queue of its group. */
  private async copy(p: number): Promise<void> {
    let state = this.intake.get(p);
    if (!state) this.intake.set(p, (state = { wait: 0, dueAt: 0 }));
    try {
      const expected = (state.cursor ??= await this.queue.cursor(p, () => this.log.lastEntry(p)));
      const entries = this.tail ? await this.tail.next(p, expected, 1_000, this.timings.intakePollMs) : await this.log.readPartition(p, expected, 1_000);
      if (!this.running) return;
      if (entries.length === 0) {
        // A blocking read waited already; a poll waits 10 ms, doubling up to intakePollMs.
        state.wait = this.tail ? 0 : Math.min(this.timings.intakePollMs, Math.max(10, state.wait * 2));
        state.dueAt = Date.now() + state.wait;
        return;
      }
      const position = entries[entries.length - 1]!.entry;
      const queued = entries.filter((e) => this.options.matches(e.event.type)).map(({ event }) => ({ key: orderKey(event), id: event.id, body: JSON.stringify(event) }));
      const result = await this.queue.enqueue(p, expected, position, queued, this.clock.now());
      state.wait = 0;
      state.dueAt = 0;
      if (result.moved) {
        // Another instance copied this partition meanwhile (a lease handover): read its cursor again.
        state.cursor = undefined;
        return;
      }
      state.cursor = position;
      if (result.refused > 0) {
        this.metrics.webhooksDropped.inc({ url: this.options.label }, result.refused);
        this.noteDrop(`${result.refused} new events`, result.refused, 'because the queue is full');
      }
      if (queued.length > 0) {
        this.groupDue.delete(groupOf(p));
        this.wake();
      }
    } catch (err) {
      if (!this.running) return;
      this.warn(`intake: ${(err as Error).message}`);
      state.cursor = undefined;
      state.dueAt = Date.now() + 1_000;
    }
  }

  private async deliveryLoop(): Promise<void> {
    let turn = 0;
    while (this.running) {
      let free = this.options.concurrency - this.inflight.size;
      if (free <= 0) {
        await this.pause(this.timings.idlePollMs);
        continue;
      }
      try {
        if (await this.isDisabled()) {
          await this.pause(this.timings.idlePollMs);
          continue;
        }
        const groups = [...new Set(this.leases.owned().map(groupOf))];
        // Start at a different group each turn, so one busy group does not take every free slot.
        turn = (turn + 1) % Math.max(1, groups.length);
        let wait = this.timings.idlePollMs;
        for (let i = 0; i < groups.length && free > 0 && this.running; i++) {
          const g = groups[(turn + i) % groups.length]!;
          const dueAt = this.groupDue.get(g);
          if (dueAt !== undefined && dueAt > Date.now()) {
            wait = Math.min(wait, dueAt - Date.now());
            continue;
          }
          const now = this.clock.now();
          const result = await this.queue.claim(g, `${this.options.owner}:${++this.claimSeq}`, now, free, now + this.timings.claimLeaseMs);
          for (const claim of result.claims) void this.attempt(claim);
          if (result.claims.length < free) {
            const groupWait = result.nextDue === undefined ? this.timings.idlePollMs : Math.max(0, Math.min(this.timings.idlePollMs, result.nextDue - now));
            this.groupDue.set(g, Date.now() + groupWait);
            wait = Math.min(wait, groupWait);
          } else {
            this.groupDue.delete(g);
            wait = 0;
          }
          free -= result.claims.length;
        }
        if (wait > 0) await this.pause(wait);
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
          // This instance's groups; the gauge's max across instances covers them all.
          const { oldest } = await this.queue.backlog([...new Set(this.leases.owned().map(groupOf))]);
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
        // The receiver says it is gone: stop everywhere. The mark comes first, here and in the
        // store; the event goes back in line only past the other instances' next read of the mark
        // (DISABLED_CACHE_MS), so that none of them sends it again meanwhile (seen on a Cluster:
        // the same event to the 410 URL twice, 60 ms apart). It is first in line at the next start.
        this.disabledAt = Date.now();
        this.noteDisabled(true);
        try {
          await this.queue.setDisabled(true);
        } finally {
          this.settle(claim, { kind: 'retry', at: this.clock.now() + 2 * DISABLED_CACHE_MS, attempts: claim.attempts });
        }
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
    this.settling.push({ group: claim.group, key: claim.key, token: claim.token, id: claim.id, outcome });
    this.groupDue.delete(claim.group);
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

  private nudgeIntake(): void {
    for (const state of this.intake.values()) state.dueAt = 0;
    this.intakeWoken = true;
    this.wakeIntake?.();
  }

  /** Waits `ms`, or until an append (the embedded log) or a stop. */
  private pauseIntake(ms: number): Promise<void> {
    if (!this.running) return Promise.resolve();
    if (this.intakeWoken) {
      this.intakeWoken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        this.intakeWoken = false;
        if (this.wakeIntake === done) this.wakeIntake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.sleepers.add(done);
      this.wakeIntake = done;
    });
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
