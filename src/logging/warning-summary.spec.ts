import { FakeClock } from '../../test/support/fake-clock';
import { WarningSummary } from './warning-summary';

describe('WarningSummary', () => {
  afterEach(() => jest.useRealTimers());

  it('writes the first warning at once, counts the rest of the period and writes their count when it ends', () => {
    jest.useFakeTimers();
    const clock = new FakeClock();
    const lines: string[] = [];
    const warnings = new WarningSummary((m) => lines.push(m), () => clock.now(), 1_000);
    const wait = (ms: number) => {
      clock.advance(ms);
      jest.advanceTimersByTime(ms);
    };
    warnings.warn('heartbeat of a not recorded: timeout');
    for (const d of ['b', 'c', 'd']) {
      wait(100);
      warnings.warn(`heartbeat of ${d} not recorded: timeout`);
    }
    wait(699);
    expect(lines).toEqual(['heartbeat of a not recorded: timeout']);
    wait(1);
    expect(lines).toEqual(['heartbeat of a not recorded: timeout', '3 more like it in the last 1 s, the last: heartbeat of d not recorded: timeout']);
    // A new period: the next one is written at once, and a quiet period writes nothing more.
    wait(5_000);
    warnings.warn('heartbeat of e not recorded: timeout');
    wait(5_000);
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe('heartbeat of e not recorded: timeout');
  });

  it('writes what it held back before a warning that opens the next period', () => {
    const clock = new FakeClock();
    const lines: string[] = [];
    const warnings = new WarningSummary((m) => lines.push(m), () => clock.now(), 1_000);
    warnings.warn('one');
    clock.advance(10);
    warnings.warn('two');
    clock.advance(2_000); // its timer has not run (real timers, not advanced): the next warning flushes first
    warnings.warn('three');
    expect(lines).toEqual(['one', '1 more like it in the last 1 s, the last: two', 'three']);
    warnings.flush();
  });
});
