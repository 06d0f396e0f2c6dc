import { IntervalRegistry } from '../common/interval-registry';
import { FakeClock } from '../../test/support/fake-clock';
import { loadConfig } from '../config/app-config';
import { MemoryEventLog } from '../events/memory-event-log';
import { MemoryPresenceStore } from '../presence/memory-presence.store';
import { SoleLeases } from '../redis/partition-leases';
import { DuePartitions } from '../redis/due-partitions';
import { OfflineGraceService, RELEASE_BATCH, releasePeriod } from './offline-grace.service';

const GRACE = 1_000;

function setup(grace = GRACE) {
  const clock = new FakeClock();
  const events = new MemoryEventLog(86_400_000);
  const store = new MemoryPresenceStore(86_400_000, events, grace);
  const config = loadConfig({ SWEEP_INTERVAL_MS: '5000', PRESENCE_EVENT_GRACE_MS: String(grace) });
  const scheduler = new IntervalRegistry();
  return { clock, store, events, scheduler, service: new OfflineGraceService(store, clock, config, scheduler, new SoleLeases(config.keys), new DuePartitions(undefined, config.keys)) };
}

describe('OfflineGraceService', () => {
  it('records every held offline once its grace ended, in batches, and a concurrent call joins the same pass', async () => {
    const { clock, store, events, service } = setup();
    const total = RELEASE_BATCH * 2 + 3;
    for (let i = 0; i < total; i++) {
      const s = { deviceId: `d${i}`, sessionId: `s${i}`, userId: `u${i}`, instanceId: 'gw-1' };
      await store.connect({ ...s, now: clock.now(), interval: 400, ttl: 10_000 });
      await store.disconnect([s], clock.now(), 'client_close');
    }
    const offlines = async () => (await events.read(undefined, 10_000, clock.now())).filter((e) => e.type === 'device.offline').length;
    clock.advance(GRACE - 1);
    expect(await service.release()).toBe(0);
    expect(await offlines()).toBe(0);
    clock.advance(1);
    const [first, joined] = await Promise.all([service.release(), service.release()]);
    expect(first).toBe(total);
    expect(joined).toBe(total);
    expect(await offlines()).toBe(total);
    expect(await service.release()).toBe(0);
  });

  it('looks every second, or every sweep when sweeps are more frequent, also without a grace (the partition tick)', () => {
    expect(releasePeriod(5_000)).toBe(1_000);
    expect(releasePeriod(200)).toBe(200);
    const on = setup();
    on.service.onApplicationBootstrap();
    expect(on.scheduler.has('offline-grace')).toBe(true);
    on.service.onApplicationShutdown();
    expect(on.scheduler.has('offline-grace')).toBe(false);
    const off = setup(0);
    off.service.onApplicationBootstrap();
    expect(off.scheduler.has('offline-grace')).toBe(true);
    off.service.onApplicationShutdown();
  });
});
