// Preloaded (`node --expose-gc --require bench/lib/probe.cjs <server>`) into both servers the bench
// measures, the gateway and the baseline alike. On SIGUSR2 it runs a full GC and writes
// process.memoryUsage() to BENCH_PROBE_FILE, so memory per connection is read after garbage is
// collected rather than at whatever point the collector happened to be. It does nothing else.
'use strict';
const fs = require('node:fs');

const file = process.env.BENCH_PROBE_FILE;
if (file) {
  process.on('SIGUSR2', () => {
    if (typeof global.gc === 'function') {
      global.gc();
      global.gc();
    }
    const tmp = `${file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify({ ...process.memoryUsage(), at: Date.now() }));
    fs.renameSync(tmp, file);
  });
}
