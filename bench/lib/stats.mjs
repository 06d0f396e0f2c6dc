// Small statistics helpers: percentiles over latency samples, rounding for reports.

/** Concatenates numeric arrays (plain or typed) into one sorted Float64Array. */
export function merge(arrays) {
  const total = arrays.reduce((n, a) => n + (a?.length ?? 0), 0);
  const out = new Float64Array(total);
  let i = 0;
  for (const a of arrays) {
    if (!a) continue;
    out.set(a, i);
    i += a.length;
  }
  return out.sort();
}

/** Nearest-rank percentile of a sorted array; NaN when empty. */
export function pct(sorted, p) {
  if (!sorted.length) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/** n, mean, p50, p90, p99, max of the samples (any order; they are copied and sorted). */
export function summarize(samples) {
  const s = merge([samples]);
  if (!s.length) return { n: 0 };
  let sum = 0;
  for (const v of s) sum += v;
  return {
    n: s.length,
    mean: round(sum / s.length, 3),
    p50: round(pct(s, 50), 3),
    p90: round(pct(s, 90), 3),
    p99: round(pct(s, 99), 3),
    max: round(s[s.length - 1], 3),
  };
}

export function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
}

export function round(x, digits = 2) {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** gateway / baseline, rounded; null when either side is missing. */
export function ratio(gateway, baseline, digits = 2) {
  if (!Number.isFinite(gateway) || !Number.isFinite(baseline) || baseline === 0) return null;
  return round(gateway / baseline, digits);
}
