import { BeforeApplicationShutdown, Injectable, OnApplicationBootstrap } from '@nestjs/common';
import { createHash, randomBytes } from 'node:crypto';
import { Clock } from '../../common/clock';
import { AppConfig } from '../../config/app-config';
import { MetricsService } from '../../metrics/metrics.service';
import { PartitionLeases } from '../../redis/partition-leases';
import { createClient, RedisConnection } from '../../redis/redis-connection';
import { EventLog } from '../event-log';
import { typeMatcher } from '../event.types';
import { MemoryEventLog } from '../memory-event-log';
import { EventTail } from './event-tail';
import { MemoryWebhookQueue } from './memory-webhook-queue';
import { RedisWebhookQueue } from './redis-webhook-queue';
import { WebhookDispatcher } from './webhook-dispatcher';
import { WebhookSender } from './webhook-sender';

/** Events in flight to one URL from one instance at most, each of a different device. */
export const WEBHOOK_CONCURRENCY = 128;
/** How long a stopping instance waits for its attempts in flight; the rest are resent by others. */
const STOP_GRACE_MS = 2_000;

/** The URL as logs and metrics show it: credentials and query left out (they may hold secrets). */
export function webhookLabel(url: string): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}

/**
 * Runs a WebhookDispatcher per WEBHOOK_URL on this instance: every instance takes part, each for
 * the partitions it holds the lease of. Each URL has its own queues and loops, so a slow or dead
 * receiver holds up only itself.
 * Starting clears a 410 stop of the configured URLs on every instance: "disabled until the
 * gateway is next started" means until any instance (re)starts, a deploy or restart being how an
 * operator says the receiver is back.
 */
@Injectable()
export class WebhookService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly dispatchers: WebhookDispatcher[] = [];
  private readonly tails: EventTail[] = [];
  private readonly sender = new WebhookSender(WEBHOOK_CONCURRENCY);

  constructor(
    private readonly config: AppConfig,
    private readonly log: EventLog,
    private readonly redis: RedisConnection,
    private readonly leases: PartitionLeases,
    private readonly metrics: MetricsService,
    private readonly clock: Clock,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const settings = this.config.webhooks;
    const owner = `${this.config.instanceId}:${randomBytes(4).toString('hex')}`;
    const matches = settings.events ? typeMatcher(settings.events) : () => true;
    for (const url of settings.urls) {
      const hash = createHash('sha256').update(url).digest('hex').slice(0, 16);
      const queue = this.storage(hash);
      const log = this.log;
      const dispatcher = new WebhookDispatcher(
        {
          url,
          label: webhookLabel(url),
          owner,
          secret: settings.secret,
          matches,
          retryWindowMs: settings.retryMs,
          timeoutMs: settings.timeoutMs,
          concurrency: WEBHOOK_CONCURRENCY,
        },
        queue,
        log,
        this.leases,
        this.sender,
        this.metrics,
        this.clock,
        Math.random,
        log instanceof MemoryEventLog ? (listener) => log.onAppend(listener) : undefined,
        this.tail(),
      );
      await dispatcher.start();
      this.dispatchers.push(dispatcher);
    }
  }

  async beforeApplicationShutdown(): Promise<void> {
    await Promise.all(this.dispatchers.map((d) => d.stop(STOP_GRACE_MS)));
    await Promise.all(this.tails.map((t) => t.close()));
    await Promise.all(this.dispatchers.map((d) => d.stopped()));
    this.sender.close();
  }

  /** One blocking reader per URL where the log is one stream (a single Redis or Sentinel); none on a Cluster or in memory. */
  private tail(): EventTail | undefined {
    const target = this.config.redis;
    if (this.log instanceof MemoryEventLog || !target || this.config.keys.partitions > 1) return undefined;
    const connect = () => {
      const client = createClient(target, this.config.redisCommandTimeoutMs + 5_000, false);
      client.on('error', () => undefined); // reported by the intake's own warning when a read fails
      return client;
    };
    const tail = new EventTail(connect, this.config.keys);
    this.tails.push(tail);
    return tail;
  }

  private storage(hash: string): MemoryWebhookQueue | RedisWebhookQueue {
    if (this.log instanceof MemoryEventLog) return new MemoryWebhookQueue();
    // Bookkeeping outlives neither the events it refers to nor their retry window.
    return new RedisWebhookQueue(this.redis.client!, this.config.keys, `wh:${hash}:`, this.config.webhooks.retryMs + this.config.eventRetentionMs);
  }
}
