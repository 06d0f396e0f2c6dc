import type { RedisClient } from '../../redis/redis-connection';
import { KeyLayout } from '../../redis/partitions';
import { redisCall } from '../../redis/redis-errors';
import { PartitionEntry } from '../event-log';
import { eventIdOf } from '../event.types';
import { toEnvelope } from '../redis-event-log';

/** How long the intake waits for its own connection before it tries again. */
const CONNECT_TIMEOUT_MS = 5_000;

type XReadReply = [string, [string, string[]][]][] | null;

/**
 * Follows a partition's stream with XREAD BLOCK, so the webhook intake reads on as soon as
 * something is appended. Worth a connection only where the log is one stream (a single Redis or
 * Sentinel); on a Cluster the intake polls the 1024 streams instead (a blocked read would stall
 * every command to that node behind it).
 *
 * The connection is its own: a blocked read would stall every command queued behind it on a
 * shared connection. Its command timeout is longer than the block. A read that fails on a
 * connection that is not ready, or that outlives its timeout (a frozen or half-open link), drops
 * the connection and the next read makes a new one: no watchdog probes this connection.
 */
export class EventTail {
  private client?: RedisClient;
  private closed = false;

  constructor(
    private readonly connect: () => RedisClient,
    private readonly keys: KeyLayout,
  ) {}

  /** Entries of partition p after `after`, in stream order; waits up to `waitMs` when there are none yet. */
  async next(p: number, after: string, count: number, waitMs: number): Promise<PartitionEntry[]> {
    const reply: XReadReply = await this.use((redis) => redis.xread('COUNT', count, 'BLOCK', waitMs, 'STREAMS', `${this.keys.at(p)}events`, after));
    return (reply?.[0]?.[1] ?? []).map(([id, fields]) => ({ entry: id, event: toEnvelope(eventIdOf(id, p, this.keys.partitions), fields) }));
  }

  async close(): Promise<void> {
    this.closed = true;
    const client = this.client;
    this.client = undefined;
    await client?.quit().catch(() => client.disconnect());
  }

  private async use<T>(command: (redis: RedisClient) => Promise<T>): Promise<T> {
    if (this.closed) throw new Error('the event tail is closed');
    const redis = (this.client ??= this.connect());
    try {
      if (redis.status === 'wait') await withTimeout(redisCall(redis.connect()), CONNECT_TIMEOUT_MS, 'no connection to Redis');
      return await redisCall(command(redis));
    } catch (err) {
      if (redis.status !== 'ready' || /did not answer/.test((err as Error).message)) {
        if (this.client === redis) this.client = undefined;
        redis.disconnect();
      }
      throw err;
    }
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
