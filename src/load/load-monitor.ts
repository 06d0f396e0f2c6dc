import { Injectable, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { AppConfig } from '../config/app-config';

/** How often the event loop's delay is sampled, and how many samples the recent maximum spans (1 s). */
export const PROBE_MS = 100;
const WINDOW = 10;

/**
 * How far behind this process is in handling what devices send it. Two parts, both measured:
 * - the event loop's delay: a packet that arrived is read at the latest one loop turn later, and
 *   under CPU saturation a turn takes long (sampled every PROBE_MS; the recent maximum is kept,
 *   and a probe that is overdue right now counts as delay already);
 * - the age of the oldest heartbeat still waiting for Redis (a saturated Redis answers late).
 * A heartbeat can be that late through no fault of its device, so presence gives that much grace
 * before it calls a session expired (HEARTBEAT script, sweeper), and REST sheds load (503) once
 * the delay passes LOAD_SHED_DELAY_MS, before heartbeats suffer.
 */
@Injectable()
export class LoadMonitor implements OnModuleInit, OnModuleDestroy {
  private readonly samples: number[] = [];
  private lastProbeAt = performance.now();
  private timer?: NodeJS.Timeout;
  private readonly inFlight = new Map<number, number>();
  private nextToken = 0;

  constructor(private readonly config: AppConfig) {}

  onModuleInit(): void {
    this.lastProbeAt = performance.now();
    this.timer = setInterval(() => this.probe(), PROBE_MS);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }

  /** Event-loop delay, ms: the recent maximum, or the current overdue probe if larger. */
  get loopDelay(): number {
    const overdue = this.timer ? performance.now() - this.lastProbeAt - PROBE_MS : 0;
    return Math.max(0, overdue, ...this.samples);
  }

  /** Age of the oldest heartbeat still waiting for its store call, ms (0 when none). */
  get heartbeatBacklog(): number {
    const oldest = this.inFlight.values().next();
    return oldest.done ? 0 : performance.now() - oldest.value;
  }

  /** How late this process may be handling a device's heartbeat right now, ms. */
  get delay(): number {
    return Math.ceil(this.loopDelay + this.heartbeatBacklog);
  }

  /** Whether REST should turn requests away (503) so that heartbeats keep up. */
  get overloaded(): boolean {
    return this.config.loadShedDelayMs > 0 && this.delay > this.config.loadShedDelayMs;
  }

  /** Follows a heartbeat's store call until it settles. */
  track<T>(call: Promise<T>): Promise<T> {
    const token = this.nextToken++;
    this.inFlight.set(token, performance.now());
    return call.finally(() => this.inFlight.delete(token));
  }

  private probe(): void {
    const now = performance.now();
    this.samples.push(Math.max(0, now - this.lastProbeAt - PROBE_MS));
    if (this.samples.length > WINDOW) this.samples.shift();
    this.lastProbeAt = now;
  }
}
