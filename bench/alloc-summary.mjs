// Summarises a V8 sampling heap profile (.heapprofile, from `npm run bench -- --alloc-prof`):
// bytes allocated in the window (collected objects included), by package / source area and by
// function, and by the nearest frame of the gateway's own code on the allocating stack (what of
// ours made a library allocate). With --per N, also bytes per unit (e.g. per heartbeat sent).
//   node bench/alloc-summary.mjs <file.heapprofile> [--top 25] [--per N]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { area, frameKey } from './lib/frames.mjs';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' }, per: { type: 'string' } },
});
if (!positionals[0]) {
  process.stderr.write('usage: node bench/alloc-summary.mjs <file.heapprofile> [--top N] [--per N]\n');
  process.exit(2);
}
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
const { head } = JSON.parse(readFileSync(positionals[0], 'utf8'));
const byArea = new Map();
const byFn = new Map();
const byOurs = new Map();
const add = (map, key, bytes) => map.set(key, (map.get(key) ?? 0) + bytes);
let total = 0;
// Depth first, carrying the nearest gateway frame above each node.
const stack = [[head, '(outside the gateway code)']];
while (stack.length) {
  const [node, ours] = stack.pop();
  const cf = node.callFrame;
  const mine = area(cf.url).startsWith('gateway') ? frameKey(cf) : ours;
  if (node.selfSize) {
    total += node.selfSize;
    add(byArea, area(cf.url), node.selfSize);
    add(byFn, frameKey(cf), node.selfSize);
    add(byOurs, mine, node.selfSize);
  }
  for (const child of node.children ?? []) stack.push([child, mine]);
}

const per = values.per ? Number(values.per) : 0;
const top = Number(values.top);
const fmt = (bytes) => `${((bytes / total) * 100).toFixed(1).padStart(5)}% ${(bytes / 1e6).toFixed(1).padStart(8)} MB${per ? `${(bytes / per).toFixed(0).padStart(7)} B/unit` : ''}`;
const print = (title, map) => {
  process.stdout.write(`\n${title}\n`);
  for (const [k, bytes] of [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${fmt(bytes)}  ${k}\n`);
};
process.stdout.write(`${positionals[0]}: ${(total / 1e6).toFixed(1)} MB allocated (sampled)${per ? `, ${(total / per).toFixed(0)} B per unit over ${per}` : ''}\n`);
print('by package / area', byArea);
print('by function', byFn);
print('by the nearest gateway frame on the allocating stack', byOurs);
