/** Exponential backoff with jitter: attempt 1 failed -> about `baseMs`, then 2x, 4x... each in [50%, 100%]. */
export function backoffMs(failedAttempts: number, baseMs: number, random: () => number): number {
  const ceiling = baseMs * 2 ** Math.max(0, failedAttempts - 1);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
