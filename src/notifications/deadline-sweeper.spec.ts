import { IntervalRegistry } from '../common/interval-registry';
import Redis from 'ioredis';
import { FakeClock } from '../../test/support/fake-clock';
import { deleteKeys, testRedisUrl, uniquePrefix } from '../../test/support/redis';
import { loadConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { FallbackService } from '../push/fallback.service';
import { createPushSender } from '../push/providers/create-push-sender';
import { PartitionLeases } from '../redis/partition-leases';
import { DuePartitions } from '../redis/due-partitions';
import { KeyLayout } from '../redis/partitions';
import { DeadlineSweeper } from './deadline-sweeper.service';
import { mintNotificationId } from './notification-id';
import { RedisNotificationStore } from './redis-notification.store';

/** Leases fixed by the test: the partitions this instance works on. */
class FixedLeases extends PartitionLeases {
  constructor(public held: number[]) {
    super();
  }
  owned(): readonly number[] {
    return this.held;
  }
  refresh(): Promise<readonly number[]> {
    return Promise.resolve(this.held);
  }
  release(): Promise<void> {
    return Promise.resolve();
  }
}

describe('DeadlineSweeper over partitions (real Redis, 1024 partitions)', () => {
  const redis = new Redis(testRedisUrl());
  const prefix = uniquePrefix('sweeper');
  const keys = new KeyLayout(prefix, true);
  const config = loadConfig({ INSTANCE_ID: 'gw-a', ACK_TIMEOUT_MS: '3000' });
  afterAll(async () => {
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  it('claims the due deadlines of the partitions it leases, and only those', async () => {
    const clock = new FakeClock();
    const metrics = new MetricsService();
    const store = new RedisNotificationStore(redis, keys);
    const fallback = new FallbackService(store, createPushSender(config.pushProviders, metrics, { now: () => clock.now() }), clock, metrics);
    const leases = new FixedLeases([]);
    const sweeper = new DeadlineSweeper(store, fallback, clock, config, metrics, new IntervalRegistry(), leases, new DuePartitions(redis, keys));
    // Online devices in three partitions: each publish target gets an ack deadline in its partition's index.
    const devices = ['dev-a', 'dev-b', 'dev-c'];
    const parts = devices.map((d) => keys.partitionOf(d));
    expect(new Set(parts).size).toBe(3);
    const now = clock.now();
    for (const d of devices) await redis.hset(`${keys.of(d)}device:${d}`, { sessionId: `s-${d}`, expiresAt: String(now + 60_000), instanceId: 'gw-a', userId: 'u' });
    const p = { id: mintNotificationId(keys, parts[0]!), data: 1, createdAt: now };
    await store.publish({ payload: p, payloadJson: JSON.stringify(p), deviceIds: devices, effectiveExpiresAt: now + 60_000, keepOffline: true, maxInbox: 10, retentionMs: 60_000, now, ackDeadlineAt: now + 3_000, fallback: 'none', leaseMs: 15_000 });
    clock.advance(3_000);
    leases.held = [parts[0]!, parts[2]!];
    expect(await sweeper.sweep()).toBe(2);
    leases.held = [parts[0]!, parts[1]!, parts[2]!];
    expect(await sweeper.sweep()).toBe(1); // the third partition's, left for its lease holder
    expect(await sweeper.sweep()).toBe(0);
    const status = await store.status(p.id, clock.now());
    expect(status?.targets.map((t) => t.status)).toEqual(['pending', 'pending', 'pending']);
  });
});
