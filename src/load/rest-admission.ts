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
 *
 * While the queue stands, only the excess is shed: a request is still let in while fewer are in
 * flight than the process answered in `target` ms of the last window (Little's law: that many
 * in flight wait about `target` each), and at least MIN_SAMPLES. Shedding every request instead
 * made admission flap: measured at 3k POSTs/s from 1,000 connections, whole windows got no 202
 * at all, then the queue formed again.
 */
@Injectable()
export class RestAdmission {
  private readonly target: number;
  private windowStart = 0;
  private quickest = Infinity;
  private admitted = 0;
  private standing = false;
  private lastQuickest = 0;
  /** How many requests may be in flight while the queue stands (from the last window's answers). */
  private limit: number = MIN_SAMPLES;
  private inFlight = 0;

  constructor(config: AppConfig) {
    this.target = config.restQueueTargetMs;
  }

  /**
   * Whether to turn a request away now: undefined lets it in (call `done` when it has ended,
   * answered or not); a number is the quickest answer of the window that found the queue standing.
   */
  admit(now: number): number | undefined {
    if (this.target <= 0) return undefined;
    this.roll(now);
    if (this.standing && this.inFlight >= this.limit) return Math.round(this.lastQuickest);
    this.inFlight++;
    return undefined;
  }

  /** A request let in has ended; `answeredAfterMs` is its time from arrival to answer, if it was answered. */
  done(now: number, answeredAfterMs?: number): void {
    if (this.target <= 0) return;
    this.inFlight = Math.max(0, this.inFlight - 1);
    if (answeredAfterMs === undefined) return;
    this.roll(now);
    this.admitted++;
    if (answeredAfterMs < this.quickest) this.quickest = answeredAfterMs;
  }

  private roll(now: number): void {
    const elapsed = now - this.windowStart;
    if (elapsed < ADMISSION_WINDOW_MS) return;
    // A gap longer than a window: the window before now saw nothing, so no queue stands.
    this.standing = elapsed < 2 * ADMISSION_WINDOW_MS && this.admitted >= MIN_SAMPLES && this.quickest > this.target;
    this.limit = Math.max(MIN_SAMPLES, Math.ceil((this.admitted * this.target) / elapsed));
    this.lastQuickest = this.quickest;
    this.windowStart = now;
    this.quickest = Infinity;
    this.admitted = 0;
  }
}
