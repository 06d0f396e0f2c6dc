import type { RedisClient } from '../../redis/redis-connection';
import { redisCall } from '../../redis/redis-errors';
import { EventLog } from '../event-log';
import { EventEnvelope } from '../event.types';
import { MemoryEventLog } from '../memory-event-log';
import { toEnvelope } from '../redis-event-log';

/** Follows the event log: the webhook intake reads on as soon as something is appended, without polling. */
export abstract class EventTail {
  /** Events after `after`, oldest first; waits up to `waitMs` when there are none yet. */
  abstract next(after: string, count: number, waitMs: number): Promise<EventEnvelope[]>;
  abstract close(): Promise<void>;
}

/** How long the intake waits for its own connection before it tries again. */
const CONNECT_TIMEOUT_MS = 5_000;

type XReadReply = [string, [string, string[]][]][] | null;

/**
 * XREAD BLOCK on a connection of its own: a blocked read would stall every command queued behind
 * it on a shared connection. Its command timeout is longer than the block. A read that fails on a
 * connection that is not ready, or that outlives its timeout (a frozen or half-open link), drops
 * the connection and the next read makes a new one: no watchdog probes this connection, and a
 * Cluster client that could not read its slots may never become ready by itself.
 */
export class RedisEventTail extends EventTail {
  private client?: RedisClient;
  private closed = false;

  constructor(
    private readonly connect: () => RedisClient,
    private readonly key: string,
  ) {
    super();
  }

  async next(after: string, count: number, waitMs: number): Promise<EventEnvelope[]> {
    const reply: XReadReply = await this.use((redis) => redis.xread('COUNT', count, 'BLOCK', waitMs, 'STREAMS', this.key, after));
    return (reply?.[0]?.[1] ?? []).map(([id, fields]) => toEnvelope(id, fields));
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

/** The embedded log: read, or wait for the next append. */
export class MemoryEventTail extends EventTail {
  constructor(
    private readonly log: MemoryEventLog,
    private readonly now: () => number,
  ) {
    super();
  }

  async next(after: string, count: number, waitMs: number): Promise<EventEnvelope[]> {
    const ready = await this.log.read(after, count, this.now());
    if (ready.length > 0) return ready;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, waitMs);
      const off = this.log.onAppend(done);
      function done() {
        clearTimeout(timer);
        off();
        resolve();
      }
    });
    return this.log.read(after, count, this.now());
  }

  async close(): Promise<void> {}
}

/** The tail for the log the app uses. */
export function isMemoryLog(log: EventLog): log is MemoryEventLog {
  return log instanceof MemoryEventLog;
}
