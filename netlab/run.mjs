#!/usr/bin/env node
// `npm run netlab`: runs the presence scenarios of netlab/scenarios.mjs in one lab, concurrently,
// and writes docs/presence-accuracy.md (+ docs/presence-nat.svg) from the results.
//   --only=blackhole,hung,nat,loss2,loss5,natlearn   a subset
//   --json=<file>     also write the raw results (test/netlab-presence.e2e-spec.ts reads them)
//   --no-docs         do not touch docs/
//   --minutes=<n>     how long the lossy scenarios observe (default 5)
//   --check           only say whether this machine can run the lab (exit 0) or not (exit 3)
// Needs root, iproute2, iptables and libnetfilter_queue (see README "Network lab"); says why and
// exits 3 when the machine cannot run it.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { installExitHandlers, killAll } from '../bench/lib/procs.mjs';
import { createLab, favour, labSupport } from './lab.mjs';
import { deathScenario, lossyScenario, natLearningScenario, startLabRedis } from './scenarios.mjs';
import { writeDocs } from './report.mjs';

const ROOT = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=');
    return [k, v ?? true];
  }),
);
const minutes = Number(args.minutes ?? 5);
const only = args.only ? new Set(String(args.only).split(',')) : undefined;

const support = labSupport();
if (args.check) {
  console.log(JSON.stringify(support));
  process.exit(support.ok ? 0 : 3);
}
if (!support.ok) {
  console.error(`netlab: cannot run here: ${support.reason}`);
  process.exit(3);
}

// This process times what the lab measures (when a connection left the kernel's table, when an
// event arrived): it runs ahead of the rest of the machine like the lab's other processes.
favour(process.pid);

let lab;
installExitHandlers(() => void lab?.destroy());

const SCENARIOS = {
  blackhole: ({ lab, redis }) => deathScenario({ lab, redis, kind: 'blackhole' }),
  hung: ({ lab, redis }) => deathScenario({ lab, redis, kind: 'hung' }),
  nat: ({ lab, redis }) => deathScenario({ lab, redis, kind: 'nat' }),
  loss2: ({ lab, redis }) =>
    lossyScenario({ lab, redis, name: 'loss2', devices: 200, interval: 2_000, delayMs: 300, jitterMs: 100, lossPct: 2, durationMs: minutes * 60_000 }),
  loss5: ({ lab, redis }) =>
    lossyScenario({ lab, redis, name: 'loss5', devices: 200, interval: 5_000, delayMs: 300, jitterMs: 100, lossPct: 5, durationMs: minutes * 60_000 }),
  natlearn: ({ lab, redis }) => natLearningScenario({ lab, redis }),
};

const started = Date.now();
const redis = await startLabRedis();
lab = await createLab({ prefix: 'pgn' });
const results = {};
const errors = {};
try {
  await Promise.all(
    Object.entries(SCENARIOS)
      .filter(([name]) => !only || only.has(name))
      .map(async ([name, scenario]) => {
        const t = Date.now();
        try {
          results[name] = await scenario({ lab, redis });
          console.error(`netlab: ${name} done in ${((Date.now() - t) / 1000).toFixed(0)} s`);
        } catch (err) {
          errors[name] = err.stack ?? String(err);
          console.error(`netlab: ${name} failed: ${err.stack ?? err}`);
        }
      }),
  );
} finally {
  await lab.destroy();
  await killAll(2_000);
}
const output = { startedAt: new Date(started).toISOString(), durationS: (Date.now() - started) / 1000, results, errors };
if (args.json) writeFileSync(String(args.json), JSON.stringify(output, null, 2));
if (!args['no-docs'] && !only) writeDocs(join(ROOT, 'docs'), output);
console.log(JSON.stringify({ durationS: output.durationS, scenarios: Object.keys(results), failed: Object.keys(errors) }));
process.exit(Object.keys(errors).length ? 1 : 0);
