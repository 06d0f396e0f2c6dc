import { Injectable, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { Clock } from '../common/clock';
import { TransientMap } from '../common/transient-map';
import { AppConfig } from '../config/app-config';

/** How often the event loop's delay is sampled, and how many samples the recent maximum spans (1 s). */
export const PROBE_MS = 100;
const WINDOW = 10;
/**
 * Delays below this are the event loop's ordinary jitter (a GC pause, a burst of work), which the
 * TTL's slack of half an interval already absorbs; they give no grace.
 */
export const JITTER_MS = 100;

/** A moment on both clocks: the injected one (what presence runs on) and the monotonic one. */
interface Moment {
  clock: number;
  mono: number;
}

/**
 * How far behind this process is in handling what devices send it. Two parts, both measured:
 * - the event loop's delay: a packet that arrived is read at the latest one loop turn later, and
 *   under CPU saturation a turn takes long (sampled every PROBE_MS; the recent maximum is kept,
 *   and a probe that is overdue right now counts as delay already);
 * - the age of the oldest heartbeat still waiting for Redis (a saturated Redis answers late).
 * A heartbeat can be that late through no fault of its device, so presence gives that much grace
 * before it calls a session expired (HEARTBEAT script, sweeper), and REST sheds load (503) once
 * the delay passes LOAD_SHED_DELAY_MS, before heartbeats suffer.
 *
 * A delay counts only as far as both the injected clock and the monotonic one saw it: with the
 * system clock they agree; a test's clock that jumps ahead is not a delay, and one that stands
 * still shows none.
 */
@Injectable()
export class LoadMonitor implements OnModuleInit, OnModuleDestroy {
  private readonly samples: number[] = [];
  /** The largest of `samples`, kept at each probe: the delay is read on every heartbeat. */
  private recentMax = 0;
  private lastProbe: Moment;
  private timer?: NodeJS.Timeout;
  /** Heartbeats waiting for their store call, oldest first. */
  private readonly inFlight = new TransientMap<number, Moment>();
  private nextToken = 0;

  constructor(
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {
    this.lastProbe = this.moment();
  }

  onModuleInit(): void {
    this.lastProbe = this.moment();
    this.timer = setInterval(() => this.probe(), PROBE_MS);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }

  /** Event-loop delay, ms: the recent maximum, or the current overdue probe if larger. */
  get loopDelay(): number {
    const overdue = this.timer ? this.since(this.lastProbe) - PROBE_MS : 0;
    return Math.max(0, overdue, this.recentMax);
  }

  /** Age of the oldest heartbeat still waiting for its store call, ms (0 when none). */
  get heartbeatBacklog(): number {
    const oldest = this.inFlight.first();
    return oldest ? this.since(oldest) : 0;
  }

  /** How late this process may be handling a device's heartbeat right now, ms (0 below JITTER_MS). */
  get delay(): number {
    const delay = this.loopDelay + this.heartbeatBacklog;
    return delay < JITTER_MS ? 0 : Math.ceil(delay);
  }

  /** Whether REST should turn requests away (503) so that heartbeats keep up. */
  get overloaded(): boolean {
    return this.config.loadShedDelayMs > 0 && this.delay > this.config.loadShedDelayMs;
  }

  /**
   * A heartbeat's store call starts; the caller passes the token to `settled` once it settles
   * (a try/finally around its await: no promise of its own per heartbeat).
   */
  started(): number {
    const token = this.nextToken++;
    this.inFlight.set(token, this.moment());
    return token;
  }

  settled(token: number): void {
    this.inFlight.delete(token);
  }

  private probe(): void {
    this.samples.push(Math.max(0, this.since(this.lastProbe) - PROBE_MS));
    if (this.samples.length > WINDOW) this.samples.shift();
    this.recentMax = Math.max(0, ...this.samples);
    this.lastProbe = this.moment();
  }

  private moment(): Moment {
    return { clock: this.clock.now(), mono: performance.now() };
  }

  /** Time since `m` as both clocks agree on it. */
  private since(m: Moment): number {
    return Math.max(0, Math.min(this.clock.now() - m.clock, performance.now() - m.mono));
  }
}
