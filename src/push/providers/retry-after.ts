/**
 * A `Retry-After` header (RFC 9110 10.2.3) as a delay in ms: delay-seconds or an HTTP-date.
 * Anything else is undefined (the caller's own backoff applies).
 */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const raw = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!raw) return undefined;
  if (/^\d+$/.test(raw)) return Number(raw) * 1000;
  const at = Date.parse(raw);
  if (Number.isNaN(at) || !/[a-z]/i.test(raw)) return undefined;
  return Math.max(0, at - now);
}

/** Exponential backoff with jitter: attempt 1 failed -> about `baseMs`, then 2x, 4x... each in [50%, 100%]. */
export function backoffMs(failedAttempts: number, baseMs: number, random: () => number): number {
  const ceiling = baseMs * 2 ** Math.max(0, failedAttempts - 1);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
