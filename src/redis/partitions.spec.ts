import { crc16, GROUP_SIZE, KeyLayout, keySlot, partitionOf, PARTITIONS, TAGS, tagTableHash } from './partitions';

describe('partitions', () => {
  it('computes the CRC Redis Cluster uses (its test vector)', () => {
    expect(crc16('123456789')).toBe(0x31c3);
    expect(keySlot('foo')).toBe(12182); // redis-cli CLUSTER KEYSLOT foo
    expect(keySlot('push:{user1000}:x')).toBe(keySlot('user1000'));
  });

  it('gives every partition its own tag, whose slot is in [16p, 16p + 15]', () => {
    expect(TAGS).toHaveLength(PARTITIONS);
    expect(new Set(TAGS).size).toBe(PARTITIONS);
    TAGS.forEach((tag, p) => {
      const slot = keySlot(`{${tag}}`);
      expect(slot >> 4).toBe(p);
    });
    expect(Math.max(...TAGS.map((t) => t.length))).toBeLessThanOrEqual(4);
  });

  it('keeps the tag table fixed: a changed table would orphan every key', () => {
    expect(tagTableHash()).toBe(PINNED);
  });

  it('spreads device ids evenly over the partitions', () => {
    const counts = new Array<number>(PARTITIONS).fill(0);
    for (let i = 0; i < 102_400; i++) counts[partitionOf(`device-${i}`)]!++;
    expect(Math.min(...counts)).toBeGreaterThan(50);
    expect(Math.max(...counts)).toBeLessThan(160);
  });

  it('lays out keys with one partition and no tag on a single Redis', () => {
    const single = new KeyLayout('push:', false);
    expect(single.partitions).toBe(1);
    expect(single.of('dev-1')).toBe('push:');
    expect(single.control).toBe('push:');
    expect(single.groups).toBe(1);
    expect(single.partitionsOfGroup(0)).toEqual([0]);
  });

  it('lays out keys by partition tag on a Cluster, one slot per device', () => {
    const sharded = new KeyLayout('push:', true);
    const p = partitionOf('dev-1');
    expect(sharded.of('dev-1')).toBe(`push:{${TAGS[p]}}:`);
    expect(keySlot(`${sharded.of('dev-1')}presence:dev-1`)).toBe(keySlot(`${sharded.of('dev-1')}inbox:dev-1`));
    expect(sharded.control).toBe('push:{ctl}:');
    expect(sharded.groups).toBe(PARTITIONS / GROUP_SIZE);
    expect(sharded.partitionsOfGroup(1)).toEqual(Array.from({ length: 16 }, (_, i) => 16 + i));
    const grouped = sharded.byPartition(['a', 'b', 'a2', 'dev-1'], (s) => s);
    expect([...grouped.values()].flat().sort()).toEqual(['a', 'a2', 'b', 'dev-1']);
    expect([...grouped.keys()]).toEqual([...grouped.keys()].sort((x, y) => x - y));
  });

  it('refuses a prefix with braces', () => {
    expect(() => new KeyLayout('{push}:', true)).toThrow(/must not contain/);
  });
});

const PINNED = 'cee041ec5551e881842225684d723fac6ed00a2848f2b166db1f08aef4d39b19';
