/**
 * Reconnect delays: exponential with full jitter (a random delay between 0 and the exponential
 * cap), so thousands of clients dropped by one event (a deploy, a network blip) do not come back
 * in lockstep. BASE 500 ms doubles per attempt up to MAX 30 s; the attempt count resets after a
 * session is ready.
 */
export const RECONNECT_BASE_MS = 500;
export const RECONNECT_MAX_MS = 30_000;

export class Backoff {
  private attempt = 0;

  constructor(
    private readonly baseMs = RECONNECT_BASE_MS,
    private readonly maxMs = RECONNECT_MAX_MS,
    private readonly random: () => number = Math.random,
  ) {}

  next(): number {
    const cap = Math.min(this.maxMs, this.baseMs * 2 ** this.attempt);
    if (cap < this.maxMs) this.attempt++;
    return Math.floor(this.random() * cap);
  }

  reset(): void {
    this.attempt = 0;
  }
}
