// Preloaded (`node --expose-gc --require bench/lib/probe.cjs <server>`) into both servers the bench
// measures, the gateway and the baseline alike. On SIGUSR2 it reads one command from
// `${BENCH_PROBE_FILE}.cmd` and answers in BENCH_PROBE_FILE:
//   memory                 a memory-reducing full GC (V8's last-resort flavour), then the heap's
//                          figures, so memory per connection is read after garbage is collected
//                          rather than whenever the collector last ran, and without the young
//                          generation's slack: a regular full GC leaves the young generation at
//                          whatever size allocation last grew it to (up to 32 MB), which would
//                          count as memory of the connections when it grew between two readings
//                          and not when it was grown already at the first (Nest's boot grows it);
//                          the last-resort GC shrinks it to its minimum in both servers alike;
//   profile-start          starts the V8 CPU profiler (in-process inspector session);
//   profile-stop <path>    stops it and writes the .cpuprofile to <path>;
//   alloc-start            starts V8's sampling heap profiler, collected objects included;
//   alloc-stop <path>      stops it and writes the .heapprofile to <path>;
//   heap-snapshot <path>   writes a V8 heap snapshot (for bench/heap-summary.mjs);
//   loop-delay-start       starts measuring event-loop delay (perf_hooks, 10 ms resolution);
//   loop-delay-stop        stops it and answers its p50 / p99 / max in ms: how late the server
//                          itself ran its callbacks, apart from what other processes cost.
// Both files are opened once at start: at the file-descriptor limit (the max-connections probe)
// opening them would fail. A failure here is reported in the answer and never affects the server.
'use strict';
const fs = require('node:fs');
const inspector = require('node:inspector');
const v8 = require('node:v8');
const { monitorEventLoopDelay } = require('node:perf_hooks');

const file = process.env.BENCH_PROBE_FILE;
if (file) {
  const out = fs.openSync(file, 'w');
  const cmd = fs.openSync(`${file}.cmd`, 'a+');
  const buf = Buffer.alloc(4096);
  let seq = 0;
  let session;
  let loopDelay;

  const answer = (result) => {
    try {
      fs.ftruncateSync(out, 0);
      fs.writeSync(out, JSON.stringify({ ...result, seq: ++seq, at: Date.now() }), 0);
    } catch (err) {
      process.stderr.write(`bench probe: ${err.message}\n`);
    }
  };
  /** The in-process inspector session the profilers run in, opened on first use. */
  const connect = () => {
    if (session) return;
    session = new inspector.Session();
    session.connect();
  };
  const post = (method, params) =>
    new Promise((resolve, reject) => session.post(method, params, (err, res) => (err ? reject(err) : resolve(res))));

  const commands = {
    async memory() {
      if (typeof global.gc === 'function') {
        global.gc();
        global.gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
      }
      // Not process.memoryUsage(): it reads /proc and needs a descriptor (the bench reads RSS itself).
      const heap = v8.getHeapStatistics();
      return { heapUsed: heap.used_heap_size, heapTotal: heap.total_heap_size, external: heap.external_memory };
    },
    async 'heap-snapshot'(path) {
      if (typeof global.gc === 'function') global.gc();
      return { written: v8.writeHeapSnapshot(path) };
    },
    async 'profile-start'() {
      connect();
      await post('Profiler.enable');
      await post('Profiler.start');
      return { profiling: true };
    },
    // Allocations sampled over a window, collected ones included (what the young generation's
    // scavenges have to get through), for bench/alloc-summary.mjs.
    async 'alloc-start'() {
      connect();
      await post('HeapProfiler.enable');
      await post('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
      return { sampling: true };
    },
    async 'alloc-stop'(path) {
      const { profile } = await post('HeapProfiler.stopSampling');
      fs.writeFileSync(path, JSON.stringify(profile));
      return { written: path };
    },
    async 'loop-delay-start'() {
      loopDelay?.disable();
      loopDelay = monitorEventLoopDelay({ resolution: 10 });
      loopDelay.enable();
      return { measuring: true };
    },
    async 'loop-delay-stop'() {
      if (!loopDelay) throw new Error('loop-delay-start first');
      loopDelay.disable();
      const ms = (ns) => Math.round(ns / 1e4) / 100;
      const out = { p50: ms(loopDelay.percentile(50)), p99: ms(loopDelay.percentile(99)), max: ms(loopDelay.max) };
      loopDelay = undefined;
      return out;
    },
    async 'profile-stop'(path) {
      const { profile } = await post('Profiler.stop');
      fs.writeFileSync(path, JSON.stringify(profile));
      return { written: path };
    },
  };

  process.on('SIGUSR2', () => {
    let line;
    try {
      line = buf.toString('utf8', 0, fs.readSync(cmd, buf, 0, buf.length, 0)).trim();
    } catch (err) {
      answer({ error: err.message });
      return;
    }
    const [name, ...rest] = line.split(' ');
    const run = commands[name || 'memory'];
    if (!run) {
      answer({ error: `unknown probe command ${name}` });
      return;
    }
    run(rest.join(' ')).then(answer, (err) => answer({ error: err.message }));
  });
}
