import { EventLog, PartitionEntry } from './event-log';
import { EventEnvelope, EventType, compareEventIds, eventIdTime } from './event.types';

/** Most events the embedded log holds, whatever their age: a bound on memory for one process. */
export const MEMORY_EVENT_LOG_MAX = 100_000;

/**
 * The embedded store's event log: ids like Redis Stream ids (`<ms>-<n>`, never going back even if
 * the clock does), pruned by age on every append and read, and bounded in size.
 */
export class MemoryEventLog extends EventLog {
  readonly partitions = 1;
  private readonly entries: EventEnvelope[] = [];
  /** Index of the first live entry (entries before it are dropped in batches, not shifted one by one). */
  private head = 0;
  private lastMs = 0;
  private lastN = -1;
  /** Called after each append (the webhook intake waits on it instead of polling). */
  private readonly appended = new Set<() => void>();

  constructor(
    private readonly retentionMs: number,
    private readonly maxEntries = MEMORY_EVENT_LOG_MAX,
  ) {
    super();
  }

  get size(): number {
    return this.entries.length - this.head;
  }

  /** `timestamp`: when the change happened, if before `now` (an offline held by the grace). */
  append(type: EventType, now: number, data: Record<string, unknown>, timestamp = now): EventEnvelope {
    this.prune(now);
    if (now > this.lastMs) {
      this.lastMs = now;
      this.lastN = 0;
    } else {
      this.lastN++;
    }
    const event: EventEnvelope = { id: `${this.lastMs}-${this.lastN}`, type, timestamp, data };
    this.entries.push(event);
    if (this.size > this.maxEntries) this.head++;
    this.compact();
    for (const listener of this.appended) listener();
    return event;
  }

  /** Calls `listener` after every append until the returned function is called. */
  onAppend(listener: () => void): () => void {
    this.appended.add(listener);
    return () => this.appended.delete(listener);
  }

  /** The newest event's id, or `0-0` when the log is empty. */
  lastId(): string {
    return this.size > 0 ? this.entries[this.entries.length - 1]!.id : '0-0';
  }

  async read(after: string | undefined, count: number, now: number): Promise<EventEnvelope[]> {
    this.prune(now);
    return this.after(after, count);
  }

  private after(after: string | undefined, count: number): EventEnvelope[] {
    let lo = this.head;
    let hi = this.entries.length;
    if (after !== undefined) {
      // First entry with an id greater than `after` (ids are increasing).
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (compareEventIds(this.entries[mid]!.id, after) <= 0) lo = mid + 1;
        else hi = mid;
      }
    }
    return this.entries.slice(lo, lo + count).map((e) => ({ ...e, data: { ...e.data } }));
  }

  async readPartition(_p: number, after: string, count: number): Promise<PartitionEntry[]> {
    return this.after(after, count).map((event) => ({ entry: event.id, event }));
  }

  async lastEntry(): Promise<string> {
    return this.lastId();
  }

  /** Drops what is EVENT_RETENTION old on the log's own time (ids), as Redis trims by MINID. */
  prune(now: number): void {
    const cutoff = now - this.retentionMs;
    while (this.head < this.entries.length && eventIdTime(this.entries[this.head]!.id) <= cutoff) this.head++;
    this.compact();
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries.splice(0, this.head);
      this.head = 0;
    }
  }
}
