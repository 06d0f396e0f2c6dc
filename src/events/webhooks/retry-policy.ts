/** Retries are at least this far apart... */
export const MIN_RETRY_DELAY_MS = 1_000;
/** ...and at most this far (also caps a receiver's Retry-After). */
export const MAX_RETRY_DELAY_MS = 5 * 60_000;

/**
 * How long to wait before the next attempt, after `attempts` failed ones (1 or more): exponential
 * backoff with full jitter, a uniform pick between the minimum and min(max, minimum x 2^attempts),
 * so receivers that failed together do not get their retries together. A Retry-After (on 429 and
 * 503) is honoured, within the same bounds.
 */
export function retryDelay(attempts: number, random: number, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) return Math.min(MAX_RETRY_DELAY_MS, Math.max(MIN_RETRY_DELAY_MS, retryAfterMs));
  const ceiling = Math.min(MAX_RETRY_DELAY_MS, MIN_RETRY_DELAY_MS * 2 ** Math.min(attempts, 20));
  return Math.round(MIN_RETRY_DELAY_MS + random * (ceiling - MIN_RETRY_DELAY_MS));
}

/** What happens after a failed attempt: another at `at`, or the event is dropped (its window is over). */
export function afterFailure(
  failure: { attempts: number; eventTime: number; retryAfterMs?: number },
  now: number,
  retryWindowMs: number,
  random: number,
): { kind: 'retry'; at: number } | { kind: 'drop' } {
  const deadline = failure.eventTime + retryWindowMs;
  if (now >= deadline) return { kind: 'drop' };
  // The last attempt happens at the deadline itself, so every event is tried until its window ends.
  return { kind: 'retry', at: Math.min(now + retryDelay(failure.attempts, random, failure.retryAfterMs), deadline) };
}
