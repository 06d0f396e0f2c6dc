import { Clock, SystemClock } from '../common/clock';
import { MinHeap } from '../common/min-heap';
import { luaScript, BoundScript } from '../redis/lua-script';
import { KeyLayout } from '../redis/partitions';
import type { RedisClient } from '../redis/redis-connection';
import { redisCall } from '../redis/redis-errors';
import { EventLog, PartitionEntry } from './event-log';
import { EventEnvelope, EventPosition, EventType, eventIdOf, eventPosition } from './event.types';

/** How long the partitions' tips (floor and last id) are reused by pull requests. */
export const TIPS_MAX_AGE_MS = 500;

/**
 * A partition's floor and last stream id, read together: every event appended after this read has
 * an id above the floor read here, so none with ms <= floor is missing from (last id and before).
 */
const PARTITION_TIP = luaScript({
  name: 'pushPartitionTip',
  keys: ['events', 'floor'],
  args: {},
  body: `
local last = redis.call('XREVRANGE', eventsKey, '+', '-', 'COUNT', 1)[1]
return { redis.call('GET', floorKey) or '0', last and last[1] or '' }
`,
});

interface Tip {
  floor: number;
  /** The last stream entry's (ms, n), if the stream has any. */
  last?: { ms: number; n: number };
}

/** A partition's stream entry id `<ms>-<n>`, as numbers. */
function entryPosition(entry: string): { ms: number; n: number } {
  const dash = entry.indexOf('-');
  return { ms: Number(entry.slice(0, dash)), n: Number(entry.slice(dash + 1)) };
}

/**
 * The event log in Redis: one Stream per partition, `keys.at(p) + 'events'` (with one partition
 * `<prefix>events`, as before partitioning), written by the presence and notification scripts
 * (EVENT_LOG_LUA). Each entry holds `type`, `ts` and `data` (the JSON of the event's data).
 *
 * With one partition a read is one XRANGE after the cursor, up to the stream's end. With many
 * (a Cluster), log order is (ms, p, n) and a page is a k-way merge of the partitions' streams up
 * to the settled watermark W = the lowest partition floor: no event with ms <= W can be appended
 * any more (EVENT_LOG_LUA clamps ids above the floor), so a cursor never skips one.
 */
export class RedisEventLog extends EventLog {
  private readonly keys: KeyLayout;
  private readonly tipScript: BoundScript<typeof PARTITION_TIP>;
  private tips: Tip[];
  private tipsAt = -Infinity;
  private tipsAtMonotonic = -Infinity;
  private refreshing?: Promise<Tip[]>;

  /** `keys`: the layout (a bare prefix means one partition, for callers not yet partitioned). */
  constructor(
    private readonly redis: RedisClient,
    keys: KeyLayout | string,
    private readonly retentionMs: number,
    private readonly clock: Clock = new SystemClock(),
  ) {
    super();
    this.keys = typeof keys === 'string' ? new KeyLayout(keys, false) : keys;
    this.tipScript = PARTITION_TIP.bind(redis);
    this.tips = Array.from({ length: this.keys.partitions }, () => ({ floor: 0 }));
  }

  get partitions(): number {
    return this.keys.partitions;
  }

  async read(after: string | undefined, count: number, now: number): Promise<EventEnvelope[]> {
    // The scripts trim by MINID approximately (whole stream nodes); the oldest retained id is exact here.
    const oldest = Math.max(0, now - this.retentionMs + 1);
    const P = this.keys.partitions;
    const cursor: EventPosition = after === undefined ? { ms: oldest - 1, p: P, n: 0 } : eventPosition(after, P);
    if (P === 1) {
      // One stream: its order is the log order, read to its end (no floor to wait for).
      const start = cursor.ms < oldest ? `${oldest}-0` : cursor.p > 0 ? `${cursor.ms + 1}-0` : `(${cursor.ms}-${cursor.n}`;
      return (await this.xrange(0, start, '+', count)).map((e) => e.event);
    }
    return this.merge(cursor, count, oldest);
  }

  async readPartition(p: number, after: string, count: number): Promise<PartitionEntry[]> {
    return this.xrange(p, `(${after}`, '+', count);
  }

  async lastEntry(p: number): Promise<string> {
    const [last] = await redisCall(this.redis.xrevrange(`${this.keys.at(p)}events`, '+', '-', 'COUNT', 1));
    return last?.[0] ?? '0-0';
  }

  /** The k-way merge of the partitions' streams after `c`, up to the settled watermark. */
  private async merge(c: EventPosition, want: number, oldest: number): Promise<EventEnvelope[]> {
    const tips = await this.currentTips();
    const W = Math.min(...tips.map((t) => t.floor));
    const starts = new Map<number, string>();
    tips.forEach((tip, q) => {
      if (!tip.last) return;
      // Where q's events after c begin: its events at c.ms were returned when q < c.p.
      const from = q < c.p ? { ms: c.ms + 1, n: 0, open: false } : q === c.p ? { ms: c.ms, n: c.n, open: true } : { ms: c.ms, n: 0, open: false };
      if (from.ms < oldest) Object.assign(from, { ms: oldest, n: 0, open: false });
      if (from.ms > W) return;
      const { ms, n } = tip.last;
      if (ms < from.ms || (ms === from.ms && (n < from.n || (n === from.n && from.open)))) return;
      starts.set(q, `${from.open ? '(' : ''}${from.ms}-${from.n}`);
    });
    if (starts.size === 0) return [];
    const k = Math.min(want, Math.max(8, Math.ceil((2 * want) / starts.size)));
    const end = String(W);
    type Head = { pos: EventPosition; event: EventEnvelope };
    const buffers = new Map<number, { items: PartitionEntry[]; i: number; more: boolean }>();
    const heap = new MinHeap<Head>((h) => h.pos.ms * 2048 + h.pos.p);
    const pushHead = (q: number) => {
      const buf = buffers.get(q)!;
      const entry = buf.items[buf.i];
      if (!entry) return;
      const { ms, n } = entryPosition(entry.entry);
      heap.push({ pos: { ms, p: q, n }, event: entry.event });
    };
    await Promise.all(
      [...starts].map(async ([q, start]) => {
        const items = await this.xrange(q, start, end, k);
        buffers.set(q, { items, i: 0, more: items.length === k });
        pushHead(q);
      }),
    );
    const out: EventEnvelope[] = [];
    while (out.length < want) {
      const head = heap.pop();
      if (!head) break;
      out.push(head.event);
      const q = head.pos.p;
      const buf = buffers.get(q)!;
      buf.i++;
      if (buf.i >= buf.items.length && buf.more && out.length < want) {
        // Its next entry may come before every other head: read on before merging further.
        const items = await this.xrange(q, `(${head.pos.ms}-${head.pos.n}`, end, Math.max(k, want - out.length));
        buffers.set(q, { items, i: 0, more: items.length === Math.max(k, want - out.length) });
      }
      pushHead(q);
    }
    return out;
  }

  /**
   * Every partition's tip, refreshed at most every TIPS_MAX_AGE_MS and only when asked for. Old by
   * either clock is old: the injected one (tests move it on), or the process's monotonic one (a
   * clock that stands still or steps back must not keep stale tips forever).
   */
  private currentTips(): Promise<Tip[]> {
    const fresh = this.clock.now() - this.tipsAt < TIPS_MAX_AGE_MS && performance.now() - this.tipsAtMonotonic < TIPS_MAX_AGE_MS;
    if (fresh) return Promise.resolve(this.tips);
    this.refreshing ??= this.refreshTips().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async refreshTips(): Promise<Tip[]> {
    const startedAt = this.clock.now();
    const startedAtMonotonic = performance.now();
    const replies = await Promise.allSettled(
      this.tips.map((_, p) => {
        const prefix = this.keys.at(p);
        return this.tipScript({ keys: { events: `${prefix}events`, floor: `${prefix}events:floor` }, args: {} }) as Promise<[string, string]>;
      }),
    );
    // A partition that could not be read keeps its last known floor and tip: W stalls rather than skips.
    this.tips = replies.map((r, p) =>
      r.status === 'fulfilled' ? { floor: Number(r.value[0]) || 0, last: r.value[1] ? entryPosition(r.value[1]) : undefined } : this.tips[p]!,
    );
    this.tipsAt = startedAt;
    this.tipsAtMonotonic = startedAtMonotonic;
    return this.tips;
  }

  private async xrange(p: number, start: string, end: string, count: number): Promise<PartitionEntry[]> {
    const entries = await redisCall(this.redis.xrange(`${this.keys.at(p)}events`, start, end, 'COUNT', count));
    return entries.map(([id, fields]) => ({ entry: id, event: toEnvelope(eventIdOf(id, p, this.keys.partitions), fields) }));
  }
}

/** An envelope from its id and a Stream entry's fields. */
export function toEnvelope(id: string, fields: string[]): EventEnvelope {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
  return { id, type: f.type as EventType, timestamp: Number(f.ts), data: JSON.parse(f.data ?? '{}') as Record<string, unknown> };
}
