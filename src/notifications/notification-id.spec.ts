import { NOTIFICATION_ID } from '../common/patterns';
import { KeyLayout, PARTITIONS } from '../redis/partitions';
import { busiestPartition, headerPartitionOf, mintNotificationId } from './notification-id';

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('notification ids', () => {
  const sharded = new KeyLayout('push:', true);
  const single = new KeyLayout('push:', false);

  it('are v4 UUIDs naming their header partition in their first 10 bits, for every partition', () => {
    for (let h = 0; h < PARTITIONS; h++) {
      const id = mintNotificationId(sharded, h);
      expect(NOTIFICATION_ID.test(id)).toBe(true);
      expect(id).toMatch(V4);
      expect(headerPartitionOf(sharded, id)).toBe(h);
    }
  });

  it('keep their own randomness: two ids of one partition differ', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => mintNotificationId(sharded, 5)));
    expect(ids.size).toBe(1000);
  });

  it('are ordinary random UUIDs with one partition, all with the header in partition 0', () => {
    const ids = Array.from({ length: 200 }, () => mintNotificationId(single, 0));
    expect(ids.every((id) => V4.test(id) && headerPartitionOf(single, id) === 0)).toBe(true);
    // Not forced to leading zeros: the first digits stay random.
    expect(new Set(ids.map((id) => id[0])).size).toBeGreaterThan(4);
  });

  it('put the header where most targets are', () => {
    const devices = ['a', 'b', 'c', 'd', 'e'];
    const busiest = [...sharded.byPartition([...devices, 'a'], (d) => d)].sort((x, y) => y[1].length - x[1].length)[0]![0];
    expect(busiestPartition(sharded, [...devices, 'a'])).toBe(busiest);
    expect(busiestPartition(single, devices)).toBe(0);
  });
});
