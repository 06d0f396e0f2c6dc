import { loadConfig } from '../config/app-config';
import { ADMISSION_WINDOW_MS, MIN_SAMPLES, RestAdmission } from './rest-admission';

const W = ADMISSION_WINDOW_MS;

/** `count` requests let in and answered, spread over the window starting at `from`, each taking `ms`. */
function answers(admission: RestAdmission, from: number, count: number, ms: (i: number) => number): void {
  for (let i = 0; i < count; i++) {
    const at = from + (i * (W - 1)) / count;
    expect(admission.admit(at)).toBeUndefined();
    admission.done(at, ms(i));
  }
}

/** `count` requests arriving at `now` and staying in flight: what admit said to each. */
function arrive(admission: RestAdmission, now: number, count: number): (number | undefined)[] {
  return Array.from({ length: count }, () => admission.admit(now));
}

const allIn = (n: number): undefined[] => Array.from({ length: n }, () => undefined);

describe('RestAdmission', () => {
  const make = (target = '100') => new RestAdmission(loadConfig({ REST_QUEUE_TARGET_MS: target }));

  it('once every answer of a whole window took longer than the target, sheds for the next window what is beyond MIN_SAMPLES in flight', () => {
    const admission = make();
    answers(admission, 1, MIN_SAMPLES, () => 101);
    expect(arrive(admission, W - 1, 1)).toEqual([undefined]); // the window is not over yet
    // The queue stands from W on: requests are let in while fewer than MIN_SAMPLES are in flight.
    expect(arrive(admission, W, MIN_SAMPLES - 1)).toEqual(allIn(MIN_SAMPLES - 1));
    expect(admission.admit(W)).toBe(101);
    expect(admission.admit(2 * W - 1)).toBe(101);
    // One in flight ends (its client went away, no answer): room for one more.
    admission.done(2 * W - 1);
    expect(arrive(admission, 2 * W - 1, 2)).toEqual([undefined, 101]);
  });

  it('while the queue stands, lets in as many as the process answered in `target` ms of the last window', () => {
    const admission = make('100');
    // 200 answers in a window of 500 ms: 40 in 100 ms.
    answers(admission, 1, 200, () => 150);
    expect(arrive(admission, W, 40)).toEqual(allIn(40));
    expect(admission.admit(W)).toBe(150);
  });

  it('does not shed when one answer of the window was quick: a burst or a pause, not a standing queue', () => {
    const admission = make();
    answers(admission, 1, MIN_SAMPLES, (i) => (i === 7 ? 99 : 5_000));
    expect(arrive(admission, W, 3 * MIN_SAMPLES)).toEqual(allIn(3 * MIN_SAMPLES));
  });

  it('does not shed on fewer than MIN_SAMPLES slow answers (a lone large fan-out is slow on its own)', () => {
    const admission = make();
    answers(admission, 1, MIN_SAMPLES - 1, () => 5_000);
    expect(arrive(admission, W, 3 * MIN_SAMPLES)).toEqual(allIn(3 * MIN_SAMPLES));
  });

  it('stops shedding after a window without enough slow answers, and after a quiet gap', () => {
    const admission = make();
    answers(admission, 1, MIN_SAMPLES, () => 300);
    expect(arrive(admission, W, MIN_SAMPLES)).toEqual(allIn(MIN_SAMPLES));
    expect(admission.admit(W)).toBe(300);
    // The requests still in flight finish slowly, but fewer than MIN_SAMPLES of them.
    for (let i = 0; i < 3; i++) admission.done(W + 1 + i, 400);
    expect(arrive(admission, 2 * W, 4 * MIN_SAMPLES)).toEqual(allIn(4 * MIN_SAMPLES));

    for (let i = 0; i < 4 * MIN_SAMPLES; i++) admission.done(2 * W + 1);
    answers(admission, 2 * W + 2, MIN_SAMPLES, () => 300);
    // MIN_SAMPLES - 3 still in flight from the first window.
    expect(arrive(admission, 3 * W, 4)).toEqual([undefined, undefined, undefined, 300]);
    // Nothing happens for longer than a window: the queue it saw is long gone.
    expect(arrive(admission, 5 * W, 2 * MIN_SAMPLES)).toEqual(allIn(2 * MIN_SAMPLES));
  });

  it('never sheds with REST_QUEUE_TARGET_MS=0', () => {
    const admission = make('0');
    answers(admission, 1, 10 * MIN_SAMPLES, () => 60_000);
    expect(arrive(admission, W, 10 * MIN_SAMPLES)).toEqual(allIn(10 * MIN_SAMPLES));
  });
});
