// Summarises a V8 .cpuprofile (from `npm run bench -- --cpu-prof`, written to bench/results/profiles/):
// self time by package / source area and by function, and inclusive time of chosen functions.
//   node bench/profile-summary.mjs <file.cpuprofile> [--top 25] [--match substring]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { area, frameKey } from './lib/frames.mjs';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' }, match: { type: 'string', multiple: true } },
});
if (!positionals[0]) {
  process.stderr.write('usage: node bench/profile-summary.mjs <file.cpuprofile> [--top N] [--match name]\n');
  process.exit(2);
}
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
const profile = JSON.parse(readFileSync(positionals[0], 'utf8'));
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const dt = new Map();
for (let i = 0; i < profile.samples.length; i++) {
  dt.set(profile.samples[i], (dt.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
}
const totalMs = [...dt.values()].reduce((a, b) => a + b, 0);

const byArea = new Map();
const byFn = new Map();
for (const n of profile.nodes) {
  const ms = dt.get(n.id) ?? 0;
  if (!ms) continue;
  const cf = n.callFrame;
  const a = area(cf.url);
  byArea.set(a, (byArea.get(a) ?? 0) + ms);
  const key = frameKey(cf);
  byFn.set(key, (byFn.get(key) ?? 0) + ms);
}

const top = Number(values.top);
const pct = (ms) => `${((ms / totalMs) * 100).toFixed(1).padStart(5)}%`;
const print = (title, map, limit = top) => {
  process.stdout.write(`\n${title}\n`);
  for (const [k, ms] of [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, limit)) {
    process.stdout.write(`${pct(ms)} ${ms.toFixed(0).padStart(7)} ms  ${k}\n`);
  }
};
process.stdout.write(`${positionals[0]}: ${totalMs.toFixed(0)} ms sampled\n`);
print('self time by package / area', byArea);
print('self time by function', byFn);

if (values.match?.length) {
  // Inclusive time: samples whose stack contains a frame matching the name.
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const incl = new Map(values.match.map((m) => [m, 0]));
  for (const [id, ms] of dt) {
    const names = [];
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) names.push(nodes.get(cur).callFrame.functionName);
    for (const m of values.match) if (names.some((n) => n.includes(m))) incl.set(m, incl.get(m) + ms);
  }
  print('inclusive time of frames matching', incl, Infinity);
}
