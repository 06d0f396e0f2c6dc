// Cross-instance traffic on a Redis Cluster, two ways, in one sitting on one 3-master cluster of its
// own (started by lib/sim-redis.mjs; issue 14 item 3, docs/design/sharding.md section 8):
//   classic  the Socket.IO Redis adapter (createAdapter: PUBLISH/PSUBSCRIBE) carrying every
//            delivery as a serverSideEmit that every instance receives (the gateway before issue 14)
//   sharded  the sharded adapter (SPUBLISH/SSUBSCRIBE) for the rest, deliveries to the holding
//            instance's mailbox (InstanceMailbox, SPUBLISH to <prefix>mail:<id>)
// `--instances` processes (default 2, at least 2): instance 0 sends deliveries for devices held by
// instance 1; the others (if any) only listen, as idle gateway instances would. Each process builds
// its Redis connections, adapter and mailbox from dist/ (npm run build first), not a copy.
// Per mode: p50/p99 of a delivery's trip (sender's publish -> receiver's handler) at a fixed rate,
// deliveries/s at saturation (`--window` publishes in flight), and per node the cluster bus's
// published-message counters and Redis CPU (INFO) over the saturation run.
//   node bench/adapter-ab.mjs [--instances 2] [--rate 2000] [--seconds 5] [--window 256] [--bytes 300]
// Not part of CI; run it on a quiet machine (it prints the load average first).
import { fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startCluster } from './lib/sim-redis.mjs';

const require = createRequire(import.meta.url);
const DIST = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'dist');
const { values } = parseArgs({
  options: {
    instances: { type: 'string', default: '2' },
    rate: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '5' },
    window: { type: 'string', default: '256' },
    bytes: { type: 'string', default: '300' },
    role: { type: 'string' },
    mode: { type: 'string' },
    index: { type: 'string' },
    nodes: { type: 'string' },
  },
});
const now = () => performance.timeOrigin + performance.now();

if (values.role === 'instance') await instance();
else await main();

/** One instance: its RedisConnection, the adapter of the mode, and its mailbox; obeys the parent. */
async function instance() {
  const { loadConfig } = require(join(DIST, 'config/app-config.js'));
  const { RedisConnection } = require(join(DIST, 'redis/redis-connection.js'));
  const { InstanceMailbox } = require(join(DIST, 'redis/instance-mailbox.js'));
  const { redisAdapter } = require(join(DIST, 'gateway/gateway-io.adapter.js'));
  const { createAdapter } = require('@socket.io/redis-adapter');
  const { forgivingClient } = require(join(DIST, 'redis/forgiving-client.js'));
  const { Server } = require('socket.io');
  const mode = values.mode;
  const id = `ab-${values.index}`;
  const config = loadConfig({ API_KEYS: 'k'.repeat(32), DEVICE_JWT_SECRET: 's'.repeat(32), REDIS_CLUSTER_NODES: values.nodes, REDIS_PREFIX: `ab${mode}:`, INSTANCE_ID: id, LOG_LEVEL: 'silent' });
  const redis = new RedisConnection(config);
  await redis.connect();
  const io = new Server();
  const warn = () => undefined;
  // The classic adapter's serverSideEmit does not return its PUBLISH: keep the last one, so the
  // sender can wait for Redis like the mailbox's send does (no unbounded queue in the client).
  let lastPublish = Promise.resolve();
  const pub = forgivingClient(redis.pub, warn);
  const trackedPub = new Proxy(pub, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (property !== 'publish') return value;
      return (...args) => (lastPublish = value(...args));
    },
  });
  io.adapter(
    mode === 'classic'
      ? createAdapter(trackedPub, forgivingClient(redis.sub, warn), { key: `${config.redisPrefix}socket.io`, requestsTimeout: 3_000 })
      : redisAdapter(redis, config.redisPrefix),
  );
  const mailbox = new InstanceMailbox(redis, config);
  let latencies = [];
  let received = 0;
  const onDelivery = (json) => {
    received++;
    latencies.push(now() - JSON.parse(json).sentAt);
  };
  if (mode === 'classic') {
    io.on('push-gateway:deliver', (target, json) => {
      if (target === id) onDelivery(json); // every instance receives it; only the target uses it
    });
  } else {
    mailbox.on('D', (body) => onDelivery(body.slice(body.indexOf('\n') + 1)));
    await mailbox.onApplicationBootstrap();
  }
  const filler = 'x'.repeat(Math.max(0, Number(values.bytes) - 120));
  const send = (target) => {
    const json = JSON.stringify({ id: 'n-1', data: { filler }, sentAt: now() });
    if (mode === 'classic') {
      io.serverSideEmit('push-gateway:deliver', target, json, ['dev-1']);
      return lastPublish;
    }
    return mailbox.send(target, 'D', `["dev-1"]\n${json}`);
  };
  process.on('message', async (msg) => {
    if (msg.cmd === 'reset') {
      latencies = [];
      received = 0;
      process.send({ ok: true });
    } else if (msg.cmd === 'stats') {
      process.send({ received, latencies });
    } else if (msg.cmd === 'rate') {
      // A fixed rate: msg.rate per second for msg.seconds, sent every millisecond in small batches.
      const end = Date.now() + msg.seconds * 1000;
      let sent = 0;
      const started = Date.now();
      while (Date.now() < end) {
        const due = Math.floor(((Date.now() - started) / 1000) * msg.rate);
        while (sent < due) {
          void send(msg.target);
          sent++;
        }
        await new Promise((r) => setTimeout(r, 1));
      }
      process.send({ sent });
    } else if (msg.cmd === 'saturate') {
      // `window` sends in flight, each waiting for Redis's answer to its publish.
      const end = Date.now() + msg.seconds * 1000;
      let sent = 0;
      const lane = async () => {
        while (Date.now() < end) {
          await send(msg.target);
          sent++;
        }
      };
      await Promise.all(Array.from({ length: msg.window }, lane));
      process.send({ sent });
    } else if (msg.cmd === 'exit') {
      await redis.onApplicationShutdown();
      process.exit(0);
    }
  });
  process.send({ ready: true });
}

async function main() {
  const [l1] = loadavg();
  console.log(`load average (1 min) at start: ${l1.toFixed(2)}`);
  const redis = await startCluster();
  const cluster = { ports: redis.nodes.map((n) => Number(n.split(':')[1])), spec: redis.env.REDIS_CLUSTER_NODES };
  try {
    const results = {};
    for (const mode of ['classic', 'sharded']) results[mode] = await runMode(mode, cluster);
    console.log('\n' + JSON.stringify(results, null, 2));
  } finally {
    await redis.stop();
  }
  console.log(`load average (1 min) at end: ${loadavg()[0].toFixed(2)}`);
}

async function runMode(mode, cluster) {
  const n = Math.max(2, Number(values.instances));
  const children = await Promise.all(
    Array.from({ length: n }, (_, i) => {
      const child = fork(fileURLToPath(import.meta.url), ['--role', 'instance', '--mode', mode, '--index', String(i), '--nodes', cluster.spec, '--bytes', values.bytes], { stdio: 'inherit' });
      return new Promise((resolve) => child.once('message', () => resolve(child)));
    }),
  );
  const ask = (child, msg) => new Promise((resolve) => (child.once('message', resolve), child.send(msg)));
  const [sender, receiver] = children;
  const target = 'ab-1';
  await new Promise((r) => setTimeout(r, 500));
  // Fixed rate: latency.
  await Promise.all(children.map((c) => ask(c, { cmd: 'reset' })));
  await ask(sender, { cmd: 'rate', rate: Number(values.rate), seconds: Number(values.seconds), target });
  await new Promise((r) => setTimeout(r, 500));
  const fixed = await ask(receiver, { cmd: 'stats' });
  // Saturation: throughput, bus counters, Redis CPU.
  await Promise.all(children.map((c) => ask(c, { cmd: 'reset' })));
  const before = await nodeStats(cluster.ports);
  const t0 = Date.now();
  const { sent } = await ask(sender, { cmd: 'saturate', window: Number(values.window), seconds: Number(values.seconds), target });
  await new Promise((r) => setTimeout(r, 1000));
  const sat = await ask(receiver, { cmd: 'stats' });
  const elapsed = (Date.now() - t0 - 1000) / 1000;
  const after = await nodeStats(cluster.ports);
  for (const c of children) c.send({ cmd: 'exit' });
  const sorted = fixed.latencies.sort((x, y) => x - y);
  const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
  const result = {
    instances: n,
    fixedRate: { rate: Number(values.rate), received: fixed.received, p50Ms: +q(0.5).toFixed(2), p99Ms: +q(0.99).toFixed(2) },
    saturation: { sent, received: sat.received, deliveriesPerSec: Math.round(sat.received / elapsed) },
    perNode: cluster.ports.map((port, i) => ({
      port,
      publishSent: after[i].publishSent - before[i].publishSent,
      publishShardSent: after[i].publishShardSent - before[i].publishShardSent,
      cpuSec: +(after[i].cpu - before[i].cpu).toFixed(2),
    })),
  };
  console.log(mode, JSON.stringify(result));
  return result;
}

async function nodeStats(ports) {
  const Redis = require('ioredis');
  return Promise.all(
    ports.map(async (port) => {
      const c = new Redis({ port, host: '127.0.0.1' });
      const info = (await c.call('CLUSTER', 'INFO')) + (await c.info('cpu'));
      c.disconnect();
      const num = (name) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
      return { publishSent: num('cluster_stats_messages_publish_sent'), publishShardSent: num('cluster_stats_messages_publishshard_sent'), cpu: num('used_cpu_sys') + num('used_cpu_user') };
    }),
  );
}
