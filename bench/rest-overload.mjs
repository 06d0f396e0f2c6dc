// Past saturation: C backends POST /v1/notifications in a closed loop for D ms against a fresh
// gateway (dist/ or BENCH_GATEWAY_DIST); per second, the statuses and the POST round trips.
//   node bench/rest-overload.mjs [connections=2000] [durationMs=8000] [--retry-after]
// --retry-after: a client answered 503 waits Retry-After (0.5-1.5x, jittered) before its next POST.
// Uses the Redis at REDIS_URL (default 127.0.0.1:6379) under its own key prefix, deleted afterwards.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { join, resolve } from 'node:path';
import Redis from 'ioredis';
import { ROOT } from './lib/harness.mjs';
import { freePort } from './lib/procs.mjs';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const respectRetryAfter = process.argv.includes('--retry-after');
const [C, D] = [Number(args[0] ?? 2000), Number(args[1] ?? 8000)];
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const dist = process.env.BENCH_GATEWAY_DIST ? resolve(ROOT, process.env.BENCH_GATEWAY_DIST) : join(ROOT, 'dist');
const port = await freePort();
const prefix = `bench-rest-overload-${port}-${Date.now()}:`;
const apiKey = `bench-${randomBytes(12).toString('hex')}`;
const env = { ...process.env, PORT: String(port), HOST: '127.0.0.1', NODE_ENV: 'production', REDIS_URL: redisUrl, REDIS_PREFIX: prefix, API_KEYS: apiKey, DEVICE_JWT_SECRET: randomBytes(32).toString('hex'), LOG_LEVEL: 'warn', API_RATE_LIMIT: '100000' };
const child = spawn(process.execPath, [join(dist, 'main.js')], { env, stdio: ['ignore', 'ignore', 'inherit'] });
try {
  for (const deadline = Date.now() + 30_000; ; ) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error('the gateway did not start');
    if (await fetch(`http://127.0.0.1:${port}/health/ready`).then((r) => r.ok, () => false)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const agent = new http.Agent({ keepAlive: true, maxSockets: C });
  const body = JSON.stringify({ deviceIds: ['nobody'], data: { x: 1 } });
  const seconds = [];
  const t0 = performance.now();
  const one = () =>
    new Promise((done) => {
      const sent = performance.now();
      const req = http.request({ agent, port, host: '127.0.0.1', method: 'POST', path: '/v1/notifications', headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}`, 'content-length': body.length } }, (res) => {
        res.resume();
        res.on('end', () => {
          const s = (seconds[Math.floor((performance.now() - t0) / 1000)] ??= { statuses: {}, rtts: [] });
          s.statuses[res.statusCode] = (s.statuses[res.statusCode] ?? 0) + 1;
          s.rtts.push(performance.now() - sent);
          const wait = Number(res.headers['retry-after'] ?? 0) * 1000 * (0.5 + Math.random());
          if (res.statusCode === 503 && respectRetryAfter) setTimeout(done, wait);
          else done();
        });
      });
      req.on('error', () => done());
      req.end(body);
    });
  await Promise.all(Array.from({ length: C }, async () => {
    while (performance.now() - t0 < D) await one();
  }));
  agent.destroy();
  const pct = (a, p) => a[Math.min(a.length - 1, Math.floor(a.length * p))].toFixed(0);
  for (const [i, s] of seconds.entries()) {
    if (!s) continue;
    s.rtts.sort((a, b) => a - b);
    process.stdout.write(`second ${i}: ${JSON.stringify(s.statuses)}; round trip p50 ${pct(s.rtts, 0.5)} ms, p99 ${pct(s.rtts, 0.99)} ms, max ${pct(s.rtts, 1)} ms\n`);
  }
} finally {
  child.kill('SIGKILL');
  const redis = new Redis(redisUrl);
  for await (const keys of redis.scanStream({ match: `${prefix}*`, count: 1000 })) if (keys.length) await redis.del(...keys);
  redis.disconnect();
}
