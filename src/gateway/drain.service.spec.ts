import { Logger } from '@nestjs/common';
import { AbstractHttpAdapter, HttpAdapterHost } from '@nestjs/core';
import { IntervalRegistry } from '../common/interval-registry';
import { createServer, Server } from 'node:http';
import { FakeClock } from '../../test/support/fake-clock';
import { DeviceChannel } from '../channel/device-channel';
import { FakeDeviceChannel } from '../channel/fake-device-channel';
import { loadConfig } from '../config/app-config';
import { LoadMonitor } from '../load/load-monitor';
import { MetricsService } from '../metrics/metrics.service';
import { MemoryPresenceStore } from '../presence/memory-presence.store';
import { DrainService } from './drain.service';
import { SoleLeases } from '../redis/partition-leases';
import { DuePartitions } from '../redis/due-partitions';
import { InstanceRegistry } from './instance-registry.service';
import { SessionSweeper } from './session-sweeper.service';
import { TokenExpiry } from './token-expiry.service';

const config = loadConfig({ INSTANCE_ID: 'gw-a' });

describe('DrainService', () => {
  let clock: FakeClock;
  let store: MemoryPresenceStore;
  let channel: FakeDeviceChannel;
  let scheduler: IntervalRegistry;
  let sweeper: SessionSweeper;
  let instances: InstanceRegistry;
  let http: HttpAdapterHost;
  let drain: DrainService;
  let warn: jest.SpyInstance;

  const connect = async (deviceId: string, instanceId: string) => {
    const ref = { deviceId, userId: 'u1', sessionId: `s-${deviceId}` };
    await store.connect({ ...ref, instanceId, now: clock.now(), interval: 1_000, ttl: 60_000 });
    if (instanceId === 'gw-a') channel.connect(ref);
  };
  const online = async (...deviceIds: string[]) => (await store.getDevices(deviceIds, clock.now())).map((d) => d?.online);

  beforeEach(async () => {
    clock = new FakeClock();
    store = new MemoryPresenceStore(86_400_000);
    channel = new FakeDeviceChannel('gw-a');
    scheduler = new IntervalRegistry();
    const asChannel = channel as unknown as DeviceChannel;
    const metrics = new MetricsService();
    const load = new LoadMonitor(config, clock);
    const tokens = new TokenExpiry(asChannel, clock, config, metrics, load);
    sweeper = new SessionSweeper(store, asChannel, clock, config, metrics, scheduler, load, tokens, new SoleLeases(config.keys), new DuePartitions(undefined, config.keys));
    instances = new InstanceRegistry(store, asChannel, clock, config, scheduler);
    http = new HttpAdapterHost();
    drain = new DrainService(asChannel, store, sweeper, instances, clock, config, http);
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    sweeper.onApplicationBootstrap();
    await instances.onApplicationBootstrap();
    await connect('here-1', 'gw-a');
    await connect('here-2', 'gw-a');
    await connect('elsewhere', 'gw-b');
  });

  afterEach(async () => {
    // Whatever a failing case left running.
    for (const name of scheduler.getIntervals()) scheduler.deleteInterval(name);
    jest.restoreAllMocks();
  });

  it("stops the sweeper, drains the channel, removes this instance's presence and leaves the registry", async () => {
    await drain.beforeApplicationShutdown('SIGTERM');
    expect(scheduler.has('presence-sweep')).toBe(false);
    expect(channel.isDraining).toBe(true);
    expect(await online('here-1', 'here-2', 'elsewhere')).toEqual([false, false, true]);
    expect(await store.listInstances(clock.now())).toEqual([]);
    expect(scheduler.has('instance-report')).toBe(false);
    expect(warn).not.toHaveBeenCalled();
  });

  it('logs a store failure instead of throwing; the devices are still told to go', async () => {
    jest.spyOn(store, 'disconnect').mockRejectedValue(new Error('connection lost'));
    await expect(drain.beforeApplicationShutdown('SIGTERM')).resolves.toBeUndefined();
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('connection lost'));
    expect(channel.isDraining).toBe(true);
    expect(scheduler.has('presence-sweep')).toBe(false);
  });

  it('leaves the registry even when removing presence failed', async () => {
    jest.spyOn(store, 'disconnect').mockRejectedValue(new Error('connection lost'));
    await drain.beforeApplicationShutdown('SIGTERM');
    expect(await store.listInstances(clock.now())).toEqual([]);
    expect(scheduler.has('instance-report')).toBe(false);
  });

  it('stops listening for HTTP before it resolves', async () => {
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    http.httpAdapter = { getHttpServer: () => server } as unknown as AbstractHttpAdapter;
    try {
      await drain.beforeApplicationShutdown();
      expect(server.listening).toBe(false);
    } finally {
      if (server.listening) server.close();
    }
  });
});
