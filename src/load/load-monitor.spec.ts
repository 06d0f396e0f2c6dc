import { FakeClock } from '../../test/support/fake-clock';
import { loadConfig } from '../config/app-config';
import { JITTER_MS, LoadMonitor } from './load-monitor';

describe('LoadMonitor', () => {
  afterEach(() => jest.useRealTimers());

  it('counts a heartbeat waiting for its store call as delay, once past ordinary jitter, until it settles', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick'] });
    const clock = new FakeClock();
    const monitor = new LoadMonitor(loadConfig({ LOAD_SHED_DELAY_MS: '250' }), clock);
    let answer!: () => void;
    const call = monitor.track(new Promise<void>((resolve) => (answer = resolve)));
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
    answer();
    await call;
    expect(monitor.delay).toBe(0);
    expect(monitor.overloaded).toBe(false);
  });

  it('does not take a test clock that jumps ahead for a delay', () => {
    const clock = new FakeClock();
    const monitor = new LoadMonitor(loadConfig({}), clock);
    void monitor.track(new Promise(() => undefined));
    clock.advance(60_000); // the injected clock jumped; no real time passed
    expect(monitor.delay).toBe(0);
  });
});
