import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import Redis from 'ioredis';
import { AppConfig } from '../config/app-config';

/**
 * The shared Redis connection, or none when REDIS_URL is unset (embedded mode). Commands are
 * bounded: they fail after REDIS_COMMAND_TIMEOUT_MS, and while the link is down they fail at once
 * instead of queueing, so the REST API can answer 503 fast rather than hang for a minute.
 * Auto-pipelining batches the commands issued in one event-loop turn (many devices' heartbeats)
 * into one write.
 */
@Injectable()
export class RedisConnection implements OnApplicationShutdown {
  private readonly logger = new Logger(RedisConnection.name);
  readonly client: Redis | null;

  constructor(config: AppConfig) {
    this.client = config.redisUrl ? createClient(config.redisUrl, config.redisCommandTimeoutMs) : null;
    this.client?.on('error', (err: Error) => this.logger.warn(`Redis: ${err.message}`));
  }

  /** Waits for the first connection so the app does not start on a Redis it cannot reach. */
  async connect(): Promise<void> {
    if (this.client && this.client.status === 'wait') await this.client.connect();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.client && this.client.status !== 'end') await this.client.quit().catch(() => this.client?.disconnect());
  }
}

export function createClient(url: string, commandTimeoutMs: number): Redis {
  return new Redis(url, {
    lazyConnect: true,
    commandTimeout: commandTimeoutMs,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    connectTimeout: 5_000,
    retryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
  });
}
