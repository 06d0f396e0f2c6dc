import { SchedulerRegistry } from '@nestjs/schedule';
import { FakeClock } from '../../test/support/fake-clock';
import { loadConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { MemoryPresenceStore } from '../presence/memory-presence.store';
import { DeviceChannel } from '../channel/device-channel';
import { SessionSweeper, SWEEP_BATCH } from './session-sweeper.service';
import { TokenExpiry } from './token-expiry.service';

describe('SessionSweeper', () => {
  it('retires every expired session in batches, closes their sockets, and spares the healthy', async () => {
    const clock = new FakeClock();
    const store = new MemoryPresenceStore(86_400_000);
    const expired: string[] = [];
    const channel = { close: (refs: { sessionId: string }[]) => expired.push(...refs.map((r) => r.sessionId)) } as unknown as DeviceChannel;
    const metrics = new MetricsService();
    const tokens = { endDue: () => 0 } as unknown as TokenExpiry;
    const sweeper = new SessionSweeper(store, channel, clock, loadConfig({}), metrics, new SchedulerRegistry(), tokens);
    const total = SWEEP_BATCH * 2 + 7;
    for (let i = 0; i < total; i++) {
      await store.connect({ deviceId: `d${i}`, sessionId: `s${i}`, userId: 'u', instanceId: 'gw', now: clock.now(), interval: 10, ttl: 100 });
    }
    await store.connect({ deviceId: 'healthy', sessionId: 'sh', userId: 'u', instanceId: 'gw', now: clock.now(), interval: 10, ttl: 1_000 });
    clock.advance(100);
    const [first, joined] = await Promise.all([sweeper.sweep(), sweeper.sweep()]);
    expect(first).toBe(total);
    expect(joined).toBe(total); // a second call while running joins the same sweep
    expect(new Set(expired).size).toBe(total);
    expect(expired).not.toContain('sh');
    expect(await sweeper.sweep()).toBe(0);
    expect((await metrics.presenceExpired.get()).values[0].value).toBe(total);
    expect(sweeper.isHealthy(clock.now(), clock.now())).toBe(true);
  });
});
