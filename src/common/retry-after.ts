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
