import { Logger } from '@nestjs/common';
import { IntervalRegistry } from '../common/interval-registry';
import { loadConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { InstanceMailbox } from './instance-mailbox';
import { RedisConnection } from './redis-connection';
import { RedisWatchdog } from './redis-watchdog.service';

const config = loadConfig({ REDIS_PREFIX: 'push:', INSTANCE_ID: 'gw-a' });

/**
 * The three connections as the watchdog sees them (publish, ping, status, disconnect, on, subscribe).
 * `link` plays the network: a lost publish never reaches the subscriber, a failed ping rejects.
 */
function fakeRedis() {
  const link = { delivers: true, answersPing: true };
  const subscribed = new Set<string>();
  const listeners: ((channel: string, message: string) => void)[] = [];
  const base = () => ({
    status: 'ready',
    disconnects: [] as (boolean | undefined)[],
    connects: 0,
    disconnect(reconnect?: boolean) {
      this.disconnects.push(reconnect);
      this.status = 'reconnecting';
    },
    async connect() {
      this.connects++;
      this.status = 'ready';
    },
  });
  const sub = {
    ...base(),
    on(event: string, listener: (channel: string, message: string) => void) {
      if (event === 'message') listeners.push(listener);
      return this;
    },
    subscribe: async (channel: string) => subscribed.add(channel).size,
  };
  const pub = {
    ...base(),
    publish: async (channel: string, message: string) => {
      if (!link.delivers || !subscribed.has(channel)) return 0;
      queueMicrotask(() => listeners.forEach((l) => l(channel, message)));
      return 1;
    },
  };
  const client = {
    ...base(),
    ping: async () => {
      if (!link.answersPing) throw new Error('Command timed out');
      return 'PONG';
    },
  };
  return { link, subscribed, client, pub, sub };
}

describe('RedisWatchdog', () => {
  let redis: ReturnType<typeof fakeRedis>;
  let metrics: MetricsService;
  let scheduler: IntervalRegistry;
  let watchdog: RedisWatchdog;

  const rebuilds = async (role: 'subscribe' | 'commands') =>
    (await metrics.redisReconnects.get()).values.find((v) => v.labels.role === role)?.value ?? 0;
  const probes = async (n: number) => {
    for (let i = 0; i < n; i++) await watchdog.probe();
  };

  beforeEach(async () => {
    redis = fakeRedis();
    metrics = new MetricsService();
    scheduler = new IntervalRegistry();
    const clients = [redis.client, redis.pub, redis.sub];
    const connection = { client: redis.client, pub: redis.pub, sub: redis.sub, all: clients, closed: false } as unknown as RedisConnection;
    const mailbox = new InstanceMailbox(connection, config);
    watchdog = new RedisWatchdog(connection, config, metrics, scheduler, mailbox);
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    watchdog.onApplicationBootstrap();
    await mailbox.onApplicationBootstrap();
  });

  afterEach(() => {
    // Cleared directly as well: a shutdown that forgot its timer must fail a case, not hang the run.
    for (const name of scheduler.getIntervals()) scheduler.deleteInterval(name);
    jest.restoreAllMocks();
  });

  it("probes through this instance's mailbox on a timer until shutdown", () => {
    expect([...redis.subscribed]).toEqual(['push:mail:gw-a']);
    expect(scheduler.has('redis-probe')).toBe(true);
    watchdog.onApplicationShutdown();
    expect(scheduler.has('redis-probe')).toBe(false);
  });

  it('stays healthy and rebuilds nothing while probes are answered', async () => {
    await probes(5);
    expect(watchdog.pubSubHealthy).toBe(true);
    expect([redis.client, redis.pub, redis.sub].map((c) => c.disconnects)).toEqual([[], [], []]);
  });

  it('reports one unanswered probe as unhealthy but does not rebuild; an answered one resets', async () => {
    redis.link.delivers = false;
    await probes(1);
    redis.link.delivers = true;
    await probes(1); // judges the lost probe, sends one that is answered
    expect(watchdog.pubSubHealthy).toBe(false);
    await probes(2);
    expect(watchdog.pubSubHealthy).toBe(true);
    expect(redis.sub.disconnects).toEqual([]);
    expect(await rebuilds('subscribe')).toBe(0);
  });

  it('rebuilds the subscriber (and a ready publisher) after two unanswered probes in a row', async () => {
    redis.link.delivers = false;
    await probes(2);
    expect(redis.sub.disconnects).toEqual([]);
    await probes(1); // judges the second miss
    expect(redis.sub.disconnects).toEqual([true]);
    expect(redis.pub.disconnects).toEqual([true]);
    expect(redis.client.disconnects).toEqual([]);
    expect(await rebuilds('subscribe')).toBe(1);
    expect(watchdog.pubSubHealthy).toBe(false); // reconnecting

    // Counting starts over after a rebuild: still two misses in a row before the next one.
    redis.sub.status = redis.pub.status = 'ready';
    expect(watchdog.pubSubHealthy).toBe(true);
    await probes(2);
    expect(redis.sub.disconnects).toEqual([true]);
    await probes(1);
    expect(redis.sub.disconnects).toEqual([true, true]);
  });

  it('forces only the connections that believe they are up', async () => {
    redis.link.delivers = false;
    redis.pub.status = 'reconnecting';
    await probes(3);
    expect(redis.sub.disconnects).toEqual([true]);
    expect(redis.pub.disconnects).toEqual([]);
  });

  it('reports the pub/sub link down while the subscriber is not ready, whatever the probes say', async () => {
    await probes(2);
    expect(watchdog.pubSubHealthy).toBe(true);
    redis.sub.status = 'reconnecting';
    expect(watchdog.pubSubHealthy).toBe(false);
  });

  it('rebuilds the command client after two failed pings in a row, not after one', async () => {
    redis.link.answersPing = false;
    await probes(1);
    redis.link.answersPing = true;
    await probes(1);
    redis.link.answersPing = false;
    await probes(1);
    expect(redis.client.disconnects).toEqual([]);
    await probes(1);
    expect(redis.client.disconnects).toEqual([true]);
    expect([redis.pub.disconnects, redis.sub.disconnects]).toEqual([[], []]);
    expect(await rebuilds('commands')).toBe(1);
    expect(watchdog.pubSubHealthy).toBe(true);
  });

  it('connects again a connection ioredis ended for good (a failover mid-reconnect), unless the app is closing', async () => {
    redis.sub.status = 'end';
    await watchdog.probe();
    expect(redis.sub.connects).toBe(1);
    expect(redis.sub.status).toBe('ready');
    expect(redis.client.connects + redis.pub.connects).toBe(0);
    (watchdog as unknown as { redis: { closed: boolean } }).redis.closed = true;
    redis.pub.status = 'end';
    await watchdog.probe();
    expect(redis.pub.connects).toBe(0);
  });
});
