import { IntervalRegistry } from './interval-registry';

describe('IntervalRegistry', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('keeps each interval under its name until it is deleted, and stops it then', () => {
    const registry = new IntervalRegistry();
    let ticks = 0;
    registry.addInterval('sweep', setInterval(() => ticks++, 100));
    expect(registry.has('sweep')).toBe(true);
    expect(registry.getIntervals()).toEqual(['sweep']);
    jest.advanceTimersByTime(250);
    expect(ticks).toBe(2);
    registry.deleteInterval('sweep');
    jest.advanceTimersByTime(1_000);
    expect(ticks).toBe(2);
    expect(registry.has('sweep')).toBe(false);
    registry.deleteInterval('sweep'); // an unknown name: nothing to stop
  });

  it('refuses a second interval under a name in use, and stops the one it refused', () => {
    const registry = new IntervalRegistry();
    let first = 0;
    let second = 0;
    registry.addInterval('report', setInterval(() => first++, 100));
    expect(() => registry.addInterval('report', setInterval(() => second++, 100))).toThrow('interval "report" is already registered');
    jest.advanceTimersByTime(300);
    expect([first, second]).toEqual([3, 0]);
  });

  it('stops every interval still registered at shutdown', () => {
    const registry = new IntervalRegistry();
    let ticks = 0;
    registry.addInterval('a', setInterval(() => ticks++, 100));
    registry.addInterval('b', setInterval(() => ticks++, 100));
    registry.onApplicationShutdown();
    jest.advanceTimersByTime(1_000);
    expect(ticks).toBe(0);
    expect(registry.getIntervals()).toEqual([]);
  });
});
