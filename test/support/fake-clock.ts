import { Clock } from '../../src/common/clock';

export class FakeClock extends Clock {
  constructor(private current = 1_700_000_000_000) {
    super();
  }

  now(): number {
    return this.current;
  }

  advance(ms: number): void {
    this.current += ms;
  }
}
