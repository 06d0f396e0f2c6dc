import { Cluster, Redis } from 'ioredis';
import { keySlot, KeyLayout } from './partitions';
import type { RedisClient } from './redis-connection';

/** One of a partition's due-time indexes: the sorted set `<partition prefix><name>`, scored by when. */
export interface DueIndex {
  name: string;
  /** The partition has work once the index's earliest score is at or before this. */
  dueBy: number;
}

/**
 * Reads the head of each named index (ARGV: key, dueBy, repeated) and returns the 1-based numbers
 * of the pairs that are due. Its keys are not declared: they are whatever partitions one node
 * serves, many slots. On a Cluster the shebang's `allow-cross-slot-keys` lets it read them, and
 * Redis still refuses a key the node does not serve (the caller then checks those partitions the
 * slow way); `no-writes` keeps it a reader, so it may never change state across slots.
 */
const PROBE = `
local due = {}
for i = 1, #ARGV, 2 do
  local head = redis.call('ZRANGE', ARGV[i], 0, 0, 'WITHSCORES')[2]
  if head and tonumber(head) <= tonumber(ARGV[i + 1]) then due[#due + 1] = (i + 1) / 2 end
end
return due`;
const CLUSTER_PROBE = `#!lua flags=allow-cross-slot-keys,no-writes\n${PROBE}`;

/**
 * Which of the partitions an instance holds have anything due, so that the periodic jobs (presence
 * sweep, held offlines, notification deadlines) call their per-partition script only there. With
 * 1024 partitions, calling each job's script in every partition on every tick would cost a
 * thousand calls per tick whatever is due (measured at SWEEP_INTERVAL_MS=50 on 3 masters: some
 * 50k commands/s from one idle instance, with POSTs waiting 40-130 ms behind them). One probe per
 * node reads the heads of all its partitions' indexes instead, so an idle tick costs one call per
 * master and a busy one adds a call per partition with work.
 *
 * A partition is left out only when the probe read every index it names and found nothing due;
 * anything the probe could not read (a node it failed on, a slot on the move, a node the slot map
 * does not know yet) counts as due. With one partition there is nothing to save: it is always
 * returned, without a probe, and so is every partition when the store names no index.
 */
export class DuePartitions {
  private slots: number[] = [];

  constructor(
    private readonly redis: RedisClient | undefined,
    private readonly keys: KeyLayout,
  ) {}

  /** The partitions among `partitions` where any of `indexes` has an entry due, in order. */
  async filter(partitions: readonly number[], indexes: readonly DueIndex[]): Promise<readonly number[]> {
    if (!this.redis || this.keys.partitions === 1 || partitions.length === 0 || indexes.length === 0) return partitions;
    const due = new Set<number>();
    await Promise.all(
      [...this.byNode(this.redis, partitions)].map(async ([node, group]) => {
        const argv: (string | number)[] = [];
        for (const p of group) for (const index of indexes) argv.push(`${this.keys.at(p)}${index.name}`, index.dueBy);
        try {
          if (!node) throw new Error('no node known for these partitions');
          const hits = (await node.eval(this.redis instanceof Cluster ? CLUSTER_PROBE : PROBE, 0, ...argv)) as number[];
          for (const hit of hits) due.add(group[Math.floor((hit - 1) / indexes.length)]!);
        } catch {
          for (const p of group) due.add(p);
        }
      }),
    );
    return partitions.filter((p) => due.has(p));
  }

  /** The partitions grouped by the master that serves their slot now (undefined: not known). */
  private byNode(redis: RedisClient, partitions: readonly number[]): Map<Redis | undefined, number[]> {
    const groups = new Map<Redis | undefined, number[]>();
    const add = (node: Redis | undefined, p: number) => {
      const list = groups.get(node);
      if (list) list.push(p);
      else groups.set(node, [p]);
    };
    if (!(redis instanceof Cluster)) {
      for (const p of partitions) add(redis, p);
      return groups;
    }
    const masters = new Map(redis.nodes('master').map((n) => [`${n.options.host}:${n.options.port}`, n]));
    for (const p of partitions) {
      const slot = (this.slots[p] ??= keySlot(this.keys.at(p)));
      const owner = redis.slots[slot]?.[0];
      add(owner === undefined ? undefined : masters.get(owner), p);
    }
    return groups;
  }
}
