import { Logger } from '@nestjs/common';
import { IntervalRegistry } from '../common/interval-registry';
import { FakeClock } from '../../test/support/fake-clock';
import { loadConfig } from '../config/app-config';
import { LoadMonitor } from '../load/load-monitor';
import { MetricsService } from '../metrics/metrics.service';
import { MemoryPresenceStore } from '../presence/memory-presence.store';
import { DeviceChannel } from '../channel/device-channel';
import { SessionSweeper, SWEEP_BATCH } from './session-sweeper.service';
import { SoleLeases } from '../redis/partition-leases';
import { DuePartitions } from '../redis/due-partitions';
import { TokenExpiry } from './token-expiry.service';

const SWEEP_MS = 100;

function setup() {
  const clock = new FakeClock();
  const store = new MemoryPresenceStore(86_400_000);
  const expired: string[] = [];
  const channel = { close: (refs: { sessionId: string }[]) => expired.push(...refs.map((r) => r.sessionId)) } as unknown as DeviceChannel;
  const metrics = new MetricsService();
  const config = loadConfig({ SWEEP_INTERVAL_MS: String(SWEEP_MS) });
  const tokens = { endDue: jest.fn(() => 0) };
  const sweeper = new SessionSweeper(
    store,
    channel,
    clock,
    config,
    metrics,
    new IntervalRegistry(),
    new LoadMonitor(config, clock),
    tokens as unknown as TokenExpiry,
    new SoleLeases(config.keys),
    new DuePartitions(undefined, config.keys),
  );
  return { clock, store, expired, metrics, sweeper, config, tokens, startedAt: clock.now() };
}

describe('SessionSweeper', () => {
  it('retires every expired session in batches, closes their sockets, and spares the healthy', async () => {
    const { clock, store, expired, metrics, sweeper, config, tokens } = setup();
    const total = SWEEP_BATCH * 2 + 7;
    for (let i = 0; i < total; i++) {
      await store.connect({ deviceId: `d${i}`, sessionId: `s${i}`, userId: 'u', instanceId: config.instanceId, now: clock.now(), interval: 10, ttl: 100 });
    }
    await store.connect({ deviceId: 'healthy', sessionId: 'sh', userId: 'u', instanceId: config.instanceId, now: clock.now(), interval: 10, ttl: 1_000 });
    clock.advance(100);
    const [first, joined] = await Promise.all([sweeper.sweep(), sweeper.sweep()]);
    expect(first).toBe(total);
    expect(joined).toBe(total); // a second call while running joins the same sweep
    expect(new Set(expired).size).toBe(total);
    expect(expired).not.toContain('sh');
    expect(await sweeper.sweep()).toBe(0);
    expect((await metrics.presenceExpired.get()).values[0]?.value).toBe(total);
    expect(tokens.endDue).toHaveBeenCalledTimes(2); // each sweep also ends the sessions whose token ran out
  });

  describe('health (what /health/ready reports)', () => {
    beforeEach(() => jest.useFakeTimers());
    afterEach(() => jest.useRealTimers());

    /** Moves the sweeper's clock and its interval timer together, running the sweeps that fall due. */
    const elapse = async (clock: FakeClock, ms: number) => {
      for (let i = 0; i < ms / SWEEP_MS; i++) {
        clock.advance(SWEEP_MS);
        await jest.advanceTimersByTimeAsync(SWEEP_MS);
      }
    };

    it('counts three intervals from start before the first sweep, and not one millisecond more', () => {
      const { sweeper, startedAt } = setup();
      expect(sweeper.isHealthy(startedAt + 3 * SWEEP_MS, startedAt)).toBe(true);
      expect(sweeper.isHealthy(startedAt + 3 * SWEEP_MS + 1, startedAt)).toBe(false);
    });

    it('stays healthy while sweeps run on their interval, and turns unhealthy three intervals after they stop', async () => {
      const { clock, sweeper, startedAt } = setup();
      sweeper.onApplicationBootstrap();
      await elapse(clock, 10 * SWEEP_MS);
      // Ten intervals after start: only sweeps that really ran keep it healthy.
      expect(sweeper.isHealthy(clock.now(), startedAt)).toBe(true);
      sweeper.stop();
      await elapse(clock, 3 * SWEEP_MS);
      expect(sweeper.isHealthy(clock.now(), startedAt)).toBe(true);
      clock.advance(1);
      expect(sweeper.isHealthy(clock.now(), startedAt)).toBe(false);
    });

    it('turns unhealthy when sweeps keep running but fail (the store is down), and recovers with the next good one', async () => {
      const { clock, store, sweeper, startedAt } = setup();
      const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      sweeper.onApplicationBootstrap();
      try {
        await elapse(clock, 2 * SWEEP_MS);
        const claim = jest.spyOn(store, 'claimExpired').mockRejectedValue(new Error('store down'));
        await elapse(clock, 4 * SWEEP_MS);
        expect(claim).toHaveBeenCalledTimes(4);
        expect(warn).toHaveBeenCalledWith('sweep failed: store down');
        expect(sweeper.isHealthy(clock.now(), startedAt)).toBe(false);
        claim.mockRestore();
        await elapse(clock, SWEEP_MS);
        expect(sweeper.isHealthy(clock.now(), startedAt)).toBe(true);
      } finally {
        sweeper.stop();
        warn.mockRestore();
      }
    });
  });
});
