import { Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config';

/** How long a verdict holds: every request answered during one window must have been slow for shedding to start. */
export const ADMISSION_WINDOW_MS = 500;
/** Fewer answers than this in a window say nothing about a queue (a lone slow fan-out is not one). */
export const MIN_SAMPLES = 20;

/**
 * Turns /v1 requests away (503 + Retry-After) while they stand in a queue, instead of letting the
 * queue grow. Past the rate one process serves, every request accepted waits for the ones before
 * it (their Redis replies, their CPU): measured with 2,000 backends posting at once, a POST waited
 * 0.5-1.6 s, all answered 202, while the event loop itself never fell a second behind (the signal
 * LoadMonitor sheds on, which protects heartbeats, not REST latency).
 *
 * The signal is each request's time in the app, from reaching it to its answer. As in CoDel, a
 * queue is "standing" when even the quickest request answered in a whole window (at least
 * MIN_SAMPLES of them) took longer than the target (REST_QUEUE_TARGET_MS): a burst or a GC pause
 * delays some requests, not every one of them for half a second, and a large fan-out is slow on
 * its own, not many times a second. While the queue stands, new requests are shed; the first
 * window without MIN_SAMPLES slow answers ends it, so admission resumes within a window once the
 * backlog has drained.
 */
@Injectable()
export class RestAdmission {
  private readonly target: number;
  private windowStart = 0;
  private quickest = Infinity;
  private admitted = 0;
  private standing = false;
  private lastQuickest = 0;

  constructor(config: AppConfig) {
    this.target = config.restQueueTargetMs;
  }

  /** A request let in was answered `delayMs` after it arrived; `now` is monotonic (ms). */
  record(delayMs: number, now: number): void {
    if (this.target <= 0) return;
    this.roll(now);
    this.admitted++;
    if (delayMs < this.quickest) this.quickest = delayMs;
  }

  /** Whether to turn a request away now, and the quickest admission of the window that decided so. */
  shedding(now: number): number | undefined {
    if (this.target <= 0) return undefined;
    this.roll(now);
    return this.standing ? Math.round(this.lastQuickest) : undefined;
  }

  private roll(now: number): void {
    const elapsed = now - this.windowStart;
    if (elapsed < ADMISSION_WINDOW_MS) return;
    // A gap longer than a window: the window before now saw nothing, so no queue stands.
    this.standing = elapsed < 2 * ADMISSION_WINDOW_MS && this.admitted >= MIN_SAMPLES && this.quickest > this.target;
    this.lastQuickest = this.quickest;
    this.windowStart = now;
    this.quickest = Infinity;
    this.admitted = 0;
  }
}
