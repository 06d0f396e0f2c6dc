// Compares two V8 heap snapshots (from `npm run bench -- --only=connections --heap-snapshots`):
// retained self size and object count by kind and constructor/function name, as the difference
// per connection between an idle server and one holding N devices.
//   node bench/heap-summary.mjs <idle.heapsnapshot> <loaded.heapsnapshot> <devices> [--top 40]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '40' } } });
if (positionals.length < 3) {
  process.stderr.write('usage: node bench/heap-summary.mjs <idle.heapsnapshot> <loaded.heapsnapshot> <devices> [--top N]\n');
  process.exit(2);
}
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

function aggregate(path) {
  const snap = JSON.parse(readFileSync(path, 'utf8'));
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const stride = fields.length;
  const byKey = new Map();
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += stride) {
    const type = types[snap.nodes[i + iType]];
    let name = snap.strings[snap.nodes[i + iName]];
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = '';
    else if (type === 'number' || type === 'hidden' || type === 'array') name = name.length > 40 ? `${name.slice(0, 40)}…` : name;
    else if (name.length > 60) name = `${name.slice(0, 60)}…`;
    const key = `${type}: ${name}`;
    const size = snap.nodes[i + iSize];
    total += size;
    const cur = byKey.get(key) ?? { size: 0, count: 0 };
    cur.size += size;
    cur.count++;
    byKey.set(key, cur);
  }
  return { byKey, total };
}

const [idlePath, loadedPath, devicesArg] = positionals;
const devices = Number(devicesArg);
const a = aggregate(idlePath);
const b = aggregate(loadedPath);
const diff = [];
for (const [key, v] of b.byKey) {
  const before = a.byKey.get(key) ?? { size: 0, count: 0 };
  diff.push({ key, bytes: (v.size - before.size) / devices, count: (v.count - before.count) / devices });
}
diff.sort((x, y) => y.bytes - x.bytes);
process.stdout.write(`self size: ${(a.total / 2 ** 20).toFixed(1)} MB idle, ${(b.total / 2 ** 20).toFixed(1)} MB with ${devices} devices: ` +
  `${((b.total - a.total) / devices / 1024).toFixed(2)} KB per device\n\n`);
process.stdout.write('bytes/device  objects/device  kind: name\n');
for (const d of diff.slice(0, Number(values.top))) {
  process.stdout.write(`${d.bytes.toFixed(0).padStart(12)}  ${d.count.toFixed(2).padStart(14)}  ${d.key}\n`);
}
