import type { RedisClient } from '../../redis/redis-connection';
import { redisCall } from '../../redis/redis-errors';
import { EventLog } from '../event-log';
import { EventEnvelope } from '../event.types';
import { MemoryEventLog } from '../memory-event-log';
import { toEnvelope } from '../redis-event-log';

/** Follows the event log: the webhook intake reads on as soon as something is appended, without polling. */
export abstract class EventTail {
  /** The newest event's id (`0-0` for an empty log): where a URL seen for the first time starts. */
  abstract last(): Promise<string>;
  /** Events after `after`, oldest first; waits up to `waitMs` when there are none yet. */
  abstract next(after: string, count: number, waitMs: number): Promise<EventEnvelope[]>;
  abstract close(): Promise<void>;
}

type XReadReply = [string, [string, string[]][]][] | null;

/**
 * XREAD BLOCK on a connection of its own: a blocked read would stall every command queued behind
 * it on a shared connection. Its command timeout is longer than the block.
 */
export class RedisEventTail extends EventTail {
  constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
  ) {
    super();
  }

  async last(): Promise<string> {
    await this.connected();
    const [entry] = await redisCall(this.redis.xrevrange(this.key, '+', '-', 'COUNT', 1));
    return entry?.[0] ?? '0-0';
  }

  async next(after: string, count: number, waitMs: number): Promise<EventEnvelope[]> {
    await this.connected();
    let reply: XReadReply;
    try {
      reply = await redisCall(this.redis.xread('COUNT', count, 'BLOCK', waitMs, 'STREAMS', this.key, after));
    } catch (err) {
      // A blocked read that outlived its timeout means a link that stopped answering (frozen, half
      // open): rebuild it rather than wait for TCP to notice. No watchdog probes this connection.
      if (this.redis.status === 'ready' && /did not answer/.test((err as Error).message)) this.redis.disconnect(true);
      throw err;
    }
    return (reply?.[0]?.[1] ?? []).map(([id, fields]) => toEnvelope(id, fields));
  }

  /** Connects the first time (the connection is lazy and queues nothing while down). */
  private async connected(): Promise<void> {
    if (this.redis.status === 'wait') await redisCall(this.redis.connect());
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

/** The embedded log: read, or wait for the next append. */
export class MemoryEventTail extends EventTail {
  constructor(
    private readonly log: MemoryEventLog,
    private readonly now: () => number,
  ) {
    super();
  }

  async last(): Promise<string> {
    return this.log.lastId();
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
