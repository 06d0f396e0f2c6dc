// A hand-written SVG line chart (no chart library): linear axes with rounded ticks (or a log y
// axis with a tick per power of ten), one polyline with point markers per series, dashed lines
// without markers for targets, a legend and a caption.

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Tick step of about `count` ticks over [0, max], rounded to 1, 2 or 5 times a power of ten. */
function niceStep(max, count = 5) {
  const raw = max / count;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const m = raw / pow;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * pow;
}

const fmt = (v) => (Math.abs(v) >= 1000 ? `${+(v / 1000).toFixed(1)}k` : `${+v.toFixed(2)}`);

/**
 * Points are [x, y] or [x, y, note]: a point with a note is drawn hollow and labelled (e.g. a
 * saturated measurement). Points are joined in x order unless the series says `ordered: true`. A
 * `dashed` series (a target) is drawn as a dashed line without markers. `yLog` draws the y axis in
 * powers of ten (for latencies that span milliseconds to seconds); values <= 0 are left out there.
 * @param {{ title: string, xLabel: string, yLabel: string, caption?: string, yLog?: boolean,
 *   series: { name: string, color: string, ordered?: boolean, dashed?: boolean, points: (number | string)[][] }[] }} spec
 */
export function lineChart({ title, xLabel, yLabel, caption, series, yLog = false }, width = 640, height = 380) {
  const pad = { left: 70, right: 20, top: 40, bottom: caption ? 78 : 58 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const usable = ([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!yLog || y > 0);
  const all = series.flatMap((s) => s.points).filter(usable);
  const xMaxRaw = Math.max(1, ...all.map(([x]) => x));
  const yMaxRaw = Math.max(1e-9, ...all.map(([, y]) => y));
  const xStep = niceStep(xMaxRaw);
  const xMax = Math.ceil(xMaxRaw / xStep) * xStep;
  const sx = (x) => pad.left + (x / xMax) * plotW;
  let sy;
  let yTicks;
  if (yLog) {
    const lo = Math.floor(Math.log10(Math.min(...all.map(([, y]) => y), yMaxRaw)));
    const hi = Math.max(lo + 1, Math.ceil(Math.log10(yMaxRaw * 1.05)));
    sy = (y) => pad.top + plotH - ((Math.log10(y) - lo) / (hi - lo)) * plotH;
    yTicks = Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i));
  } else {
    const yStep = niceStep(yMaxRaw);
    const yMax = Math.ceil((yMaxRaw * 1.05) / yStep) * yStep;
    sy = (y) => pad.top + plotH - (y / yMax) * plotH;
    yTicks = [];
    for (let y = 0; y <= yMax + 1e-9; y += yStep) yTicks.push(y);
  }

  const parts = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  parts.push(`<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`);
  for (const y of yTicks) {
    parts.push(`<line x1="${pad.left}" x2="${pad.left + plotW}" y1="${sy(y)}" y2="${sy(y)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${pad.left - 6}" y="${sy(y) + 4}" text-anchor="end" fill="#444">${fmt(y)}</text>`);
  }
  for (let x = 0; x <= xMax + 1e-9; x += xStep) {
    parts.push(`<line x1="${sx(x)}" x2="${sx(x)}" y1="${pad.top + plotH}" y2="${pad.top + plotH + 4}" stroke="#444"/>`);
    parts.push(`<text x="${sx(x)}" y="${pad.top + plotH + 18}" text-anchor="middle" fill="#444">${fmt(x)}</text>`);
  }
  parts.push(`<line x1="${pad.left}" x2="${pad.left + plotW}" y1="${pad.top + plotH}" y2="${pad.top + plotH}" stroke="#444"/>`);
  parts.push(`<line x1="${pad.left}" x2="${pad.left}" y1="${pad.top}" y2="${pad.top + plotH}" stroke="#444"/>`);
  parts.push(`<text x="${pad.left + plotW / 2}" y="${pad.top + plotH + 38}" text-anchor="middle">${esc(xLabel)}</text>`);
  parts.push(`<text transform="translate(18 ${pad.top + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);

  series.forEach((s, i) => {
    const pts = s.points.filter(usable);
    if (!s.ordered) pts.sort((a, b) => a[0] - b[0]);
    if (pts.length) {
      const d = pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
      parts.push(`<polyline points="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
      for (const [x, y, note] of s.dashed ? [] : pts) {
        const fill = note ? '#fff' : s.color;
        parts.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="4" fill="${fill}" stroke="${s.color}" stroke-width="2"><title>${esc(s.name)}: ${fmt(x)}, ${fmt(y)}${note ? ` (${esc(note)})` : ''}</title></circle>`);
        // A note near the right edge reads leftwards, so it stays inside the picture.
        const right = sx(x) > pad.left + plotW * 0.6;
        if (note) parts.push(`<text x="${(sx(x) + (right ? -8 : 8)).toFixed(1)}" y="${(sy(y) - 8).toFixed(1)}" fill="${s.color}" font-size="11"${right ? ' text-anchor="end"' : ''}>${esc(note)}</text>`);
      }
    }
    const lx = pad.left + 12;
    const ly = pad.top + 10 + i * 18;
    parts.push(
      s.dashed
        ? `<line x1="${lx}" x2="${lx + 14}" y1="${ly - 7}" y2="${ly - 7}" stroke="${s.color}" stroke-width="2" stroke-dasharray="4 2"/>`
        : `<rect x="${lx}" y="${ly - 9}" width="14" height="4" fill="${s.color}"/>`,
    );
    parts.push(`<text x="${lx + 20}" y="${ly - 3}">${esc(s.name)}</text>`);
  });
  if (caption) parts.push(`<text x="${width / 2}" y="${height - 10}" text-anchor="middle" fill="#666" font-size="11">${esc(caption)}</text>`);
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

/**
 * A grouped bar chart: one group per category, one bar per series, each bar labelled with its
 * value (`format`); an optional horizontal reference line (a limit) across the plot.
 * @param {{ title: string, yLabel: string, caption?: string, categories: string[],
 *   series: { name: string, color: string, values: number[] }[], limit?: { value: number, label: string },
 *   format?: (v: number) => string }} spec
 */
export function barChart({ title, yLabel, caption, categories, series, limit, format = fmt, log = false }, width = 640, height = 380) {
  const pad = { left: 70, right: 20, top: 40 + series.length * 16, bottom: caption ? 64 : 44 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const values = series.flatMap((s) => s.values).filter((v) => Number.isFinite(v) && (!log || v > 0));
  const yMaxRaw = Math.max(1e-9, ...values, limit ? limit.value : 0);
  const yStep = niceStep(yMaxRaw);
  const yMax = Math.ceil((yMaxRaw * 1.08) / yStep) * yStep;
  // A log axis spans whole powers of ten around the values (bars grow from its bottom).
  const lo = log ? Math.floor(Math.log10(Math.min(...values, limit ? limit.value : Infinity))) : 0;
  const hi = log ? Math.ceil(Math.log10(yMaxRaw * 1.5)) : 0;
  const sy = log ? (y) => pad.top + plotH - ((Math.log10(y) - lo) / (hi - lo)) * plotH : (y) => pad.top + plotH - (y / yMax) * plotH;
  const ticks = log ? Array.from({ length: hi - lo + 1 }, (_, k) => 10 ** (lo + k)) : Array.from({ length: Math.round(yMax / yStep) + 1 }, (_, k) => k * yStep);
  const groupW = plotW / categories.length;
  const barW = Math.min(48, (groupW * 0.8) / series.length);

  const parts = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${width}" height="${height}" fill="#fff"/>`);
  parts.push(`<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`);
  for (const y of ticks) {
    parts.push(`<line x1="${pad.left}" x2="${pad.left + plotW}" y1="${sy(y)}" y2="${sy(y)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${pad.left - 6}" y="${sy(y) + 4}" text-anchor="end" fill="#444">${fmt(y)}</text>`);
  }
  parts.push(`<line x1="${pad.left}" x2="${pad.left + plotW}" y1="${pad.top + plotH}" y2="${pad.top + plotH}" stroke="#444"/>`);
  parts.push(`<line x1="${pad.left}" x2="${pad.left}" y1="${pad.top}" y2="${pad.top + plotH}" stroke="#444"/>`);
  parts.push(`<text transform="translate(18 ${pad.top + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}${log ? ' (log scale)' : ''}</text>`);
  categories.forEach((c, ci) => {
    const gx = pad.left + ci * groupW + (groupW - barW * series.length) / 2;
    series.forEach((s, si) => {
      const v = s.values[ci];
      if (!Number.isFinite(v) || (log && v <= 0)) return;
      const x = gx + si * barW;
      parts.push(`<rect x="${x.toFixed(1)}" y="${sy(v).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${(pad.top + plotH - sy(v)).toFixed(1)}" fill="${s.color}"><title>${esc(s.name)}, ${esc(c)}: ${esc(format(v))}</title></rect>`);
      parts.push(`<text x="${(x + barW / 2 - 1).toFixed(1)}" y="${(sy(v) - 4).toFixed(1)}" text-anchor="middle" font-size="10" fill="#222">${esc(format(v))}</text>`);
    });
    parts.push(`<text x="${(pad.left + ci * groupW + groupW / 2).toFixed(1)}" y="${pad.top + plotH + 18}" text-anchor="middle" fill="#444">${esc(c)}</text>`);
  });
  if (limit) {
    parts.push(`<line x1="${pad.left}" x2="${pad.left + plotW}" y1="${sy(limit.value).toFixed(1)}" y2="${sy(limit.value).toFixed(1)}" stroke="#c0392b" stroke-width="1.5" stroke-dasharray="6 4"/>`);
    parts.push(`<text x="${pad.left + 4}" y="${(sy(limit.value) - 5).toFixed(1)}" fill="#c0392b" font-size="11">${esc(limit.label)}</text>`);
  }
  series.forEach((s, i) => {
    const lx = pad.left + 12;
    const ly = 40 + i * 16;
    parts.push(`<rect x="${lx}" y="${ly - 9}" width="14" height="10" fill="${s.color}"/>`);
    parts.push(`<text x="${lx + 20}" y="${ly}">${esc(s.name)}</text>`);
  });
  if (caption) parts.push(`<text x="${width / 2}" y="${height - 10}" text-anchor="middle" fill="#666" font-size="11">${esc(caption)}</text>`);
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
