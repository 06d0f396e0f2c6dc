import { FakeClock } from '../../test/support/fake-clock';
import { EventBudget, OVER_BUDGET_SECONDS_TO_END } from './event-budget';

const RATE = 10;
const SECOND_START = 1_700_000_000_000;

describe('EventBudget (per-socket event budget)', () => {
  let clock: FakeClock;
  let budget: EventBudget;
  /** Sends `n` packets now; returns how many were allowed and whether the socket is to be ended. */
  const send = (n: number) => {
    let allowed = 0;
    let end = false;
    for (let i = 0; i < n; i++) {
      const v = budget.take();
      if (v.allowed) allowed++;
      end ||= v.end;
    }
    return { allowed, end };
  };

  beforeEach(() => {
    clock = new FakeClock(SECOND_START);
    budget = new EventBudget(RATE, clock);
  });

  it('allows a burst of twice the budget, then one packet per token, and says when the next is due', () => {
    expect(send(20)).toEqual({ allowed: 20, end: false });
    expect(budget.msUntilNextToken()).toBe(100);
    clock.advance(100);
    expect(budget.msUntilNextToken()).toBe(0);
    expect(send(3).allowed).toBe(1);
    expect(budget.msUntilNextToken()).toBe(100); // refused packets cost nothing more: a client that stops is not punished
  });

  it(`ends a socket over its budget for ${OVER_BUDGET_SECONDS_TO_END} seconds in a row, at the moment the last one goes over`, () => {
    for (let s = 1; s < OVER_BUDGET_SECONDS_TO_END; s++) {
      expect(send(1_000).end).toBe(false);
      clock.advance(1_000);
    }
    expect(send(RATE).end).toBe(false); // within budget so far this second
    expect(send(1).end).toBe(true);
  });

  it('starts counting again after a second within budget, or without any packet', () => {
    for (const gap of ['calm', 'silent'] as const) {
      for (let s = 1; s < OVER_BUDGET_SECONDS_TO_END; s++) {
        send(1_000);
        clock.advance(1_000);
      }
      if (gap === 'calm') send(RATE); // exactly the budget: not over
      clock.advance(1_000);
      for (let s = 1; s < OVER_BUDGET_SECONDS_TO_END; s++) {
        expect(send(1_000).end).toBe(false);
        clock.advance(1_000);
      }
      clock.advance(1_000);
    }
  });

  it('counts refused packets toward the seconds over budget, and a reconnect burst is not a flood', () => {
    send(2 * RATE); // burst: over this second, allowed
    clock.advance(1_000);
    for (let s = 0; s < 3 * OVER_BUDGET_SECONDS_TO_END; s++) {
      expect(send(RATE).end).toBe(false); // at the budget for a long time: fine
      clock.advance(1_000);
    }
  });
});
