import { createHash } from 'node:crypto';

/**
 * Partitioned Redis keys (README "Redis key layout", docs/design/sharding.md).
 *
 * On a Redis Cluster every device-scoped key carries the hash tag of one of PARTITIONS partitions:
 * `partition(deviceId) = crc16(deviceId) & 1023`, the same CRC Redis Cluster uses for slots, and
 * the tag of partition p is a short string chosen so that its slot is in [16p, 16p + 15]. So every
 * partition has a slot of its own, one in every 16, and any contiguous slot assignment gives each
 * master its share of partitions, give or take one. PARTITIONS is fixed forever: it is in every
 * key name and event id.
 *
 * A single Redis (or Sentinel) uses the same code with one partition and no tag: its keys are the
 * names the contract gives (`<prefix>presence:<deviceId>`), unchanged from before partitioning.
 */
export const PARTITIONS = 1024;
/** Partitions are leased for the periodic jobs in groups of 16 (a group is 256 contiguous slots). */
export const GROUP_SIZE = 16;

const CRC_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let j = 0; j < 8; j++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

/** CRC16-XMODEM (polynomial 0x1021, initial 0), as Redis Cluster computes a key's slot. */
export function crc16(input: string | Buffer): number {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  let crc = 0;
  for (const b of bytes) crc = ((crc << 8) & 0xffff) ^ CRC_TABLE[((crc >> 8) ^ b) & 0xff]!;
  return crc;
}

/** The Cluster slot of a key, hash tags included (for tests and tools). */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return crc16(key.slice(open + 1, close)) & 16383;
  }
  return crc16(key) & 16383;
}

/** The partition (0..1023) of a device id, user id or other string, over its raw UTF-8 bytes. */
export function partitionOf(s: string): number {
  return crc16(s) & (PARTITIONS - 1);
}

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';

/** TAGS[p]: the first of "p0".."pzzz" (shortest first) whose slot lies in [16p, 16p + 15]. */
export const TAGS: readonly string[] = (() => {
  const tags = new Array<string | undefined>(PARTITIONS);
  let missing = PARTITIONS;
  const visit = (s: string) => {
    const p = (crc16(`p${s}`) & 16383) >> 4;
    if (tags[p] === undefined) {
      tags[p] = `p${s}`;
      missing--;
    }
  };
  for (let len = 1; len <= 3 && missing > 0; len++) {
    const walk = (head: string) => {
      if (head.length === len) return visit(head);
      for (const c of ALPHABET) walk(head + c);
    };
    walk('');
  }
  if (missing > 0) throw new Error('partition tags: some partition has no tag of up to 4 characters');
  return tags as string[];
})();

/** SHA-256 of TAGS.join(','): pinned by a test, since a changed table would orphan every key. */
export function tagTableHash(): string {
  return createHash('sha256').update(TAGS.join(',')).digest('hex');
}

/**
 * Where keys live: `at(p)` is the prefix of partition p's keys, `of(s)` the prefix of the keys of
 * the device (or user, or network) named s, `control` the prefix of the few global keys (instance
 * registry, leases). With one partition all three are REDIS_PREFIX itself.
 */
export class KeyLayout {
  readonly partitions: number;
  readonly control: string;
  private readonly prefixes: string[];

  constructor(
    readonly prefix: string,
    readonly sharded: boolean,
  ) {
    if (/[{}]/.test(prefix)) throw new Error('REDIS_PREFIX must not contain { or }: the gateway adds the hash tags itself');
    this.partitions = sharded ? PARTITIONS : 1;
    this.control = sharded ? `${prefix}{ctl}:` : prefix;
    this.prefixes = sharded ? TAGS.map((t) => `${prefix}{${t}}:`) : [prefix];
  }

  /** The partition of a device id (or any other name keys are grouped by); 0 with one partition. */
  partitionOf(s: string): number {
    return this.sharded ? partitionOf(s) : 0;
  }

  /** The key prefix of partition p. */
  at(p: number): string {
    const prefix = this.prefixes[p];
    if (prefix === undefined) throw new RangeError(`no partition ${p} (there are ${this.partitions})`);
    return prefix;
  }

  /** The key prefix of the partition the name s falls in. */
  of(s: string): string {
    return this.at(this.partitionOf(s));
  }

  /** Lease groups: 64 groups of 16 partitions when sharded, one group of one partition otherwise. */
  get groups(): number {
    return Math.ceil(this.partitions / GROUP_SIZE);
  }

  partitionsOfGroup(g: number): number[] {
    const first = g * GROUP_SIZE;
    const out: number[] = [];
    for (let p = first; p < Math.min(first + GROUP_SIZE, this.partitions); p++) out.push(p);
    return out;
  }

  /** Groups names by partition: one entry per partition that has any, in partition order. */
  byPartition<T>(items: readonly T[], name: (item: T) => string): Map<number, T[]> {
    const groups = new Map<number, T[]>();
    for (const item of items) {
      const p = this.partitionOf(name(item));
      const list = groups.get(p);
      if (list) list.push(item);
      else groups.set(p, [item]);
    }
    return new Map([...groups].sort((a, b) => a[0] - b[0]));
  }
}
