/**
 * The sliding-window estimate both rate limiters use: hits are counted in fixed windows aligned to
 * multiples of the window length (so every instance agrees where a window starts), and the last
 * `windowMs` are estimated as `previous × (share of it still inside) + current`. Constant time and
 * memory per key whatever the number of hits, and never more than the limit in any window of that
 * length (the usual approximation, e.g. Cloudflare's and nginx's).
 */
export interface WindowCounts {
  /** Hits counted in the window before the one holding `now`. */
  previous: number;
  /** Hits counted in the window holding `now`. */
  current: number;
}

/** The index of the fixed window holding `now` (its start is `index × windowMs`). */
export function windowIndex(now: number, windowMs: number): number {
  return Math.floor(now / windowMs);
}

/** Hits in the last `windowMs`, estimated. */
export function estimate(c: WindowCounts, now: number, windowMs: number): number {
  const inside = 1 - (now - windowIndex(now, windowMs) * windowMs) / windowMs;
  return c.previous * inside + c.current;
}

/**
 * Milliseconds until one more hit fits under `limit` if nothing else is counted meanwhile; 0 if it
 * fits now. Either the previous window slides out far enough within this one, or (when this one
 * alone is full) this window's hits slide out far enough within the next.
 */
export function retryAfterMs(c: WindowCounts, now: number, windowMs: number, limit: number): number {
  if (estimate(c, now, windowMs) + 1 <= limit) return 0;
  const start = windowIndex(now, windowMs) * windowMs;
  const freeAt =
    c.current + 1 <= limit
      ? start + windowMs * (1 - (limit - 1 - c.current) / c.previous)
      : start + windowMs + windowMs * (1 - (limit - 1) / c.current);
  return Math.max(1, Math.ceil(freeAt - now));
}
