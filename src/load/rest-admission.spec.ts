import { loadConfig } from '../config/app-config';
import { ADMISSION_WINDOW_MS, MIN_SAMPLES, RestAdmission } from './rest-admission';

const W = ADMISSION_WINDOW_MS;

/** `count` answers spread over the window starting at `from`, each taking `ms`. */
function answers(admission: RestAdmission, from: number, count: number, ms: (i: number) => number): void {
  for (let i = 0; i < count; i++) admission.record(ms(i), from + (i * (W - 1)) / count);
}

describe('RestAdmission', () => {
  const make = (target = '100') => new RestAdmission(loadConfig({ REST_QUEUE_TARGET_MS: target }));

  it('sheds for the next window once every answer of a whole window took longer than the target', () => {
    const admission = make();
    admission.shedding(0);
    answers(admission, 1, MIN_SAMPLES, () => 101);
    expect(admission.shedding(W - 1)).toBeUndefined(); // the window is not over yet
    expect(admission.shedding(W)).toBe(101);
    expect(admission.shedding(2 * W - 1)).toBe(101);
  });

  it('does not shed when one answer of the window was quick: a burst or a pause, not a standing queue', () => {
    const admission = make();
    admission.shedding(0);
    answers(admission, 1, MIN_SAMPLES, (i) => (i === 7 ? 99 : 5_000));
    expect(admission.shedding(W)).toBeUndefined();
  });

  it('does not shed on fewer than MIN_SAMPLES slow answers (a lone large fan-out is slow on its own)', () => {
    const admission = make();
    admission.shedding(0);
    answers(admission, 1, MIN_SAMPLES - 1, () => 5_000);
    expect(admission.shedding(W)).toBeUndefined();
  });

  it('stops shedding after a window without enough slow answers, and after a quiet gap', () => {
    const admission = make();
    admission.shedding(0);
    answers(admission, 1, MIN_SAMPLES, () => 300);
    expect(admission.shedding(W)).toBe(300);
    // Shedding: the requests still in flight finish slowly, but fewer than MIN_SAMPLES of them.
    answers(admission, W + 1, 3, () => 400);
    expect(admission.shedding(2 * W)).toBeUndefined();

    answers(admission, 2 * W + 1, MIN_SAMPLES, () => 300);
    expect(admission.shedding(3 * W)).toBe(300);
    // Nothing happens for longer than a window: the queue it saw is long gone.
    expect(admission.shedding(5 * W)).toBeUndefined();
  });

  it('never sheds with REST_QUEUE_TARGET_MS=0', () => {
    const admission = make('0');
    admission.shedding(0);
    answers(admission, 1, 10 * MIN_SAMPLES, () => 60_000);
    expect(admission.shedding(W)).toBeUndefined();
  });
});
