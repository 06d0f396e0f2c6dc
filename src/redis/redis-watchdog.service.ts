import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { IntervalRegistry } from '../common/interval-registry';
import { randomBytes } from 'node:crypto';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { InstanceMailbox } from './instance-mailbox';
import { RedisClient, RedisConnection } from './redis-connection';

/** Probes missed in a row before a connection is rebuilt: one can be lost to a slow moment. */
export const MISSES_BEFORE_REBUILD = 2;

/**
 * A half-open TCP link to Redis (a failover behind a proxy, a NAT dropping the mapping) looks
 * healthy to the client: a subscription on it just stops receiving, and the instance would keep
 * accepting pushes it can no longer deliver to other instances. Every REDIS_PROBE_INTERVAL_MS the
 * watchdog publishes a token to this instance's mailbox (the channel other instances send it
 * deliveries and closes on, so the probe checks the very subscription they use) and pings the
 * command connections;
 * when probes go unanswered twice in a row it forces a reconnect (ioredis re-subscribes by itself),
 * and until then readiness reports the pub/sub link down.
 */
@Injectable()
export class RedisWatchdog implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(RedisWatchdog.name);
  private expected?: string;
  private subMisses = 0;
  private commandMisses = 0;
  private beatsMisses = 0;

  constructor(
    private readonly redis: RedisConnection,
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    private readonly scheduler: IntervalRegistry,
    private readonly mailbox: InstanceMailbox,
  ) {}

  get pubSubHealthy(): boolean {
    return this.pubSubProblem === undefined;
  }

  /** Why the pub/sub link counts as down (readiness shows it), or undefined while it is up. */
  get pubSubProblem(): string | undefined {
    const status = this.redis.sub?.status;
    if (status !== 'ready') return `subscriber connection ${status ?? 'missing'}`;
    if (this.subMisses > 0) return `${this.subMisses} probe(s) of the mailbox unanswered`;
    return undefined;
  }

  onApplicationBootstrap(): void {
    if (!this.redis.sub) return;
    // The mailbox subscribes (its own bootstrap); a probe sent before that is just one miss.
    this.mailbox.on('P', (token) => {
      if (token === this.expected) this.expected = undefined;
    });
    this.scheduler.addInterval('redis-probe', setInterval(() => void this.probe(), this.config.redisProbeIntervalMs));
  }

  onApplicationShutdown(): void {
    this.scheduler.deleteInterval('redis-probe');
  }

  /** One round: revive connections ioredis gave up on, judge the previous probe, then send the next one. */
  async probe(): Promise<void> {
    const { client, beats, pub, sub } = this.redis;
    if (!client || !pub || !sub) return;
    this.revive();
    this.subMisses = this.expected === undefined ? 0 : this.subMisses + 1;
    if (this.subMisses >= MISSES_BEFORE_REBUILD) {
      // Start over after a rebuild: probes sent while it resubscribes would count as misses.
      this.rebuild('subscribe', sub, pub);
      this.subMisses = 0;
      this.expected = undefined;
      return;
    }
    this.expected = randomBytes(8).toString('hex');
    const answers = (c: RedisClient | null) =>
      c?.ping().then(
        () => true,
        () => false,
      ) ?? Promise.resolve(true);
    const [, pinged, beatsPinged] = await Promise.all([this.mailbox.send(this.config.instanceId, 'P', this.expected), answers(client), answers(beats)]);
    this.commandMisses = pinged ? 0 : this.commandMisses + 1;
    if (this.commandMisses >= MISSES_BEFORE_REBUILD) {
      this.commandMisses = 0;
      this.rebuild('commands', client);
    }
    this.beatsMisses = beatsPinged ? 0 : this.beatsMisses + 1;
    if (beats && this.beatsMisses >= MISSES_BEFORE_REBUILD) {
      this.beatsMisses = 0;
      this.rebuild('heartbeats', beats);
    }
  }

  /**
   * ioredis ends a connection for good in some failovers (a Sentinel switch-master while it was
   * reconnecting rejects the connect and sets it to "end"): nothing would ever bring the
   * subscription back, and readiness would stay red until a restart. Connect it again; a
   * subscriber resubscribes by itself once it is ready.
   */
  private revive(): void {
    if (this.redis.closed) return;
    for (const c of this.redis.all) {
      if (c.status !== 'end') continue;
      this.logger.warn('Redis connection had ended, connecting again');
      this.metrics.redisReconnects.inc({ role: 'ended' });
      c.connect().catch((err: Error) => this.logger.warn(`Redis reconnect failed: ${err.message}`));
    }
  }

  private rebuild(role: string, ...clients: RedisClient[]): void {
    // Only a connection that believes it is up needs forcing; one already reconnecting will recover.
    const stuck = clients.filter((c) => c.status === 'ready');
    if (!stuck.length) return;
    this.logger.warn(`Redis ${role} connection unresponsive, reconnecting`);
    this.metrics.redisReconnects.inc({ role });
    for (const c of stuck) c.disconnect(true);
  }
}
