/**
 * A store could not answer: Redis unreachable, failing over, or slower than
 * REDIS_COMMAND_TIMEOUT_MS. REST turns it into a 503 with Retry-After; socket handlers into an
 * `unavailable` error ack.
 * `outcome` says whether the write may still have happened: `not_applied` when the command never
 * reached Redis (or Redis refused it), `unknown` when it was sent and no answer came (a timeout,
 * a connection lost mid-flight). Callers that must not lose an effect treat `unknown` as "maybe".
 */
export class StoreUnavailableError extends Error {
  constructor(
    message: string,
    readonly outcome: 'not_applied' | 'unknown',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}
