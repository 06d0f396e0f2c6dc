import { FakeClock } from '../../test/support/fake-clock';
import { SystemClock } from '../common/clock';
import { loadConfig } from '../config/app-config';
import { JITTER_MS, LoadMonitor } from './load-monitor';

describe('LoadMonitor', () => {
  afterEach(() => jest.useRealTimers());

  it('counts a heartbeat waiting for its store call as delay, once past ordinary jitter, until it settles', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick'] });
    const clock = new FakeClock();
    const monitor = new LoadMonitor(loadConfig({ LOAD_SHED_DELAY_MS: '250' }), clock);
    const call = monitor.started();
    const wait = (ms: number) => {
      clock.advance(ms);
      jest.advanceTimersByTime(ms); // performance.now() moves with Jest's fake timers
    };
    wait(JITTER_MS - 1);
    expect(monitor.delay).toBe(0);
    wait(200);
    expect(monitor.heartbeatBacklog).toBeGreaterThanOrEqual(JITTER_MS + 199);
    expect(monitor.delay).toBeGreaterThan(250);
    expect(monitor.overloaded).toBe(true);
    monitor.settled(call);
    expect(monitor.delay).toBe(0);
    expect(monitor.overloaded).toBe(false);
  });

  it('keeps a stall of the event loop as its delay for about a second (WINDOW probes), then lets it go', async () => {
    const monitor = new LoadMonitor(loadConfig({}), new SystemClock());
    monitor.onModuleInit();
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    try {
      const until = performance.now() + 600;
      while (performance.now() < until); // the loop stalls: the next probe comes late
      await sleep(150);
      expect(monitor.loopDelay).toBeGreaterThanOrEqual(400);
      await sleep(1_500);
      expect(monitor.loopDelay).toBeLessThan(400);
    } finally {
      monitor.onModuleDestroy();
    }
  });

  it('does not take a test clock that jumps ahead for a delay', () => {
    const clock = new FakeClock();
    const monitor = new LoadMonitor(loadConfig({}), clock);
    monitor.started();
    clock.advance(60_000); // the injected clock jumped; no real time passed
    expect(monitor.delay).toBe(0);
  });
});
