import { IntervalRegistry } from '../common/interval-registry';
import { FakeClock } from '../../test/support/fake-clock';
import { DeviceChannel } from '../channel/device-channel';
import { FakeDeviceChannel } from '../channel/fake-device-channel';
import { loadConfig } from '../config/app-config';
import { MemoryPresenceStore } from '../presence/memory-presence.store';
import { LoadMonitor } from '../load/load-monitor';
import { delayChanged, InstanceRegistry } from './instance-registry.service';

describe('InstanceRegistry', () => {
  let clock: FakeClock;
  let store: MemoryPresenceStore;
  let channel: FakeDeviceChannel;
  let scheduler: IntervalRegistry;

  const registry = (sweepIntervalMs: number) =>
    new InstanceRegistry(
      store,
      channel as unknown as DeviceChannel,
      clock,
      loadConfig({ SWEEP_INTERVAL_MS: String(sweepIntervalMs), INSTANCE_ID: 'gw-a' }),
      scheduler,
    );
  const connect = (n: number) => channel.connect({ deviceId: `d${n}`, userId: 'u', sessionId: `s${n}` });

  beforeEach(() => {
    clock = new FakeClock();
    store = new MemoryPresenceStore(86_400_000);
    channel = new FakeDeviceChannel('gw-a');
    scheduler = new IntervalRegistry();
  });

  afterEach(() => jest.useRealTimers());

  it.each([
    [2_000, 6_000],
    [20_000, 15_000],
  ])('with sweeps every %d ms, reports the local count and time, kept for three report periods (%d ms)', async (sweep, ttl) => {
    connect(1);
    connect(2);
    const reportedAt = clock.now();
    await registry(sweep).report();
    expect(await store.listInstances(clock.now())).toEqual([{ instanceId: 'gw-a', online: 2, lastSeenAt: reportedAt }]);
    clock.advance(ttl - 1);
    expect(await store.listInstances(clock.now())).toHaveLength(1);
    clock.advance(1);
    expect(await store.listInstances(clock.now())).toEqual([]);
  });

  it('reports at bootstrap and every period after; leave() removes the entry and stops reporting', async () => {
    jest.useFakeTimers();
    const instances = registry(2_000);
    await instances.onApplicationBootstrap();
    expect(await store.listInstances(clock.now())).toEqual([{ instanceId: 'gw-a', online: 0, lastSeenAt: clock.now() }]);

    connect(1);
    clock.advance(2_000);
    await jest.advanceTimersByTimeAsync(2_000);
    expect(await store.listInstances(clock.now())).toEqual([{ instanceId: 'gw-a', online: 1, lastSeenAt: clock.now() }]);

    await instances.leave();
    expect(await store.listInstances(clock.now())).toEqual([]);
    expect(scheduler.has('instance-report')).toBe(false);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(await store.listInstances(clock.now())).toEqual([]);
  });

  it('publishes its load delay with its record, and at once when the delay crosses 100 ms or doubles', async () => {
    jest.useFakeTimers();
    const config = loadConfig({ SWEEP_INTERVAL_MS: '5000', INSTANCE_ID: 'gw-a' });
    let delay = 0;
    const load = { get delay() { return delay; } } as unknown as LoadMonitor;
    const instances = new InstanceRegistry(store, channel as unknown as DeviceChannel, clock, config, scheduler, load);
    await instances.onApplicationBootstrap();
    expect(await store.liveInstances(clock.now())).toEqual(new Map([['gw-a', 0]]));
    delay = 60; // below 100 ms: waits for the next report
    await jest.advanceTimersByTimeAsync(250);
    expect(await store.liveInstances(clock.now())).toEqual(new Map([['gw-a', 0]]));
    delay = 150;
    await jest.advanceTimersByTimeAsync(250);
    expect(await store.liveInstances(clock.now())).toEqual(new Map([['gw-a', 150]]));
    await instances.leave();
    expect(scheduler.has('instance-delay-report')).toBe(false);
    expect([delayChanged(150, 299), delayChanged(150, 300), delayChanged(150, 75), delayChanged(150, 99), delayChanged(20, 80)]).toEqual([false, true, true, true, false]);
  });
});
