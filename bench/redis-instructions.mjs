// How many instructions Redis itself executes for some work, counted by valgrind's callgrind: the
// same count for the same binary and the same commands whatever else the machine does, where
// Redis's CPU time (INFO cpu) moved by a factor of two between rounds of one build on a shared
// host (docs/performance.md, nineteenth round). Starts redis-server under callgrind on a free
// loopback port, runs the command given with REDIS_URL pointing at it, shuts Redis down and prints
// the instructions it executed in all (its start-up included: run the same work at two sizes and
// divide the difference by the difference in size for a cost per operation). Slow: Redis runs
// some 50 times slower under valgrind.
//   node bench/redis-instructions.mjs <command> [args...]
// REDIS_CALLGRIND_KEEP=<file> keeps callgrind's output (then: callgrind_annotate <file>).
//   e.g. node bench/redis-instructions.mjs node bench/connect-redis-cost.cjs dist 4000
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { freePort, sleep } from './lib/procs.mjs';

const [command, ...args] = process.argv.slice(2);
if (!command) {
  process.stderr.write('usage: node bench/redis-instructions.mjs <command> [args...]\n');
  process.exit(2);
}

const exited = (child) => new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code))));

const dir = mkdtempSync(join(tmpdir(), 'redis-callgrind-'));
const out = join(dir, 'callgrind.out');
const port = await freePort();
const redis = spawn(
  'valgrind',
  ['--tool=callgrind', `--callgrind-out-file=${out}`, 'redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--hz', '1'],
  { stdio: 'ignore' },
);
const admin = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
admin.on('error', () => undefined);
try {
  let up = false;
  for (let i = 0; i < 120 && !up && redis.exitCode === null; i++) {
    try {
      await admin.connect();
      up = (await admin.ping()) === 'PONG';
    } catch {
      admin.disconnect();
      await sleep(500);
    }
  }
  if (!up) throw new Error('redis-server under valgrind did not answer (is valgrind installed?)');
  const work = spawn(command, args, { stdio: 'inherit', env: { ...process.env, REDIS_URL: `redis://127.0.0.1:${port}` } });
  const code = await exited(work);
  if (code !== 0) throw new Error(`${command} exited with ${code}`);
  await admin.shutdown('NOSAVE').catch(() => undefined); // the connection closes as Redis exits
  await exited(redis);
  const totals = /^totals: (\d+)/m.exec(readFileSync(out, 'utf8'));
  if (!totals) throw new Error(`no totals in ${out}`);
  process.stdout.write(`redis-server executed ${Number(totals[1]).toLocaleString('en-US')} instructions\n`);
  // REDIS_CALLGRIND_KEEP=<file>: keep callgrind's output there, for callgrind_annotate (where in Redis).
  if (process.env.REDIS_CALLGRIND_KEEP) copyFileSync(out, process.env.REDIS_CALLGRIND_KEEP);
} catch (err) {
  process.stderr.write(`${err.message}\n`);
  process.exitCode = 1;
} finally {
  admin.disconnect();
  if (redis.exitCode === null) redis.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
