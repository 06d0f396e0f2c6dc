// Redis for the capacity simulation: its own redis-server or 3-master Cluster on free loopback
// ports (or one given by URL / node list), and per-master statistics read from INFO. Nothing here
// knows the key layout: keys, memory, commands, CPU and network are counted per master, so the
// same figures show today's single hash tag and a partitioned layout alike.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { freePort, sleep, spawnTracked, stopChild } from './procs.mjs';
import { parseInfo } from './redis.mjs';

/** Commands the simulation's own bookkeeping sends; left out of per-operation counts. */
const ADMIN = new Set(['info', 'config|resetstat', 'config', 'cluster', 'cluster|nodes', 'cluster|info', 'cluster|shards', 'cluster|slots', 'ping', 'dbsize', 'memory', 'memory|usage', 'memory|stats', 'scan', 'type', 'xlen', 'unlink', 'command', 'command|docs', 'client', 'client|setname', 'client|setinfo', 'select', 'hello', 'readonly']);

async function spawnRedis(extra = []) {
  const port = await freePort();
  const child = spawnTracked(`redis-server:${port}`, 'redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxclients', '2000', ...extra,
  ]);
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
  client.on('error', () => {});
  for (let i = 0; i < 200 && client.status !== 'ready'; i++) {
    try {
      await client.connect();
    } catch {
      if (child.exitCode !== null) throw new Error(`redis-server exited:\n${child.output()}`);
      await sleep(50);
    }
  }
  if (client.status !== 'ready') throw new Error(`redis-server did not answer on ${port}:\n${child.output()}`);
  client.disconnect();
  return { port, child };
}

/** A redis-server of our own: { url, env (for loadConfig), stop() }. */
export async function startSingle() {
  const { port, child } = await spawnRedis();
  return { kind: 'single', own: true, env: { REDIS_URL: `redis://127.0.0.1:${port}` }, nodes: [`127.0.0.1:${port}`], stop: () => stopChild(child, 2_000) };
}

/** Three masters, no replicas, created with redis-cli --cluster create (as test/support/redis-servers.ts does). */
export async function startCluster(masters = 3) {
  const started = [];
  const dirs = [];
  for (let i = 0; i < masters; i++) {
    const dir = mkdtempSync(join(tmpdir(), 'pg-sim-cluster-'));
    dirs.push(dir);
    // The bus port is chosen too: Redis's default (port + 10000) is past 65535 for a free port above 55535.
    started.push(await spawnRedis(['--cluster-enabled', 'yes', '--cluster-port', String(await freePort()), '--cluster-node-timeout', '5000', '--dir', dir]));
  }
  const nodes = started.map((s) => `127.0.0.1:${s.port}`);
  execFileSync('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes'], { stdio: 'ignore' });
  // Every node must see the whole cluster before a client asks any of them for the slot map.
  for (const s of started) {
    const probe = new Redis({ port: s.port, host: '127.0.0.1', lazyConnect: true });
    probe.on('error', () => {});
    await probe.connect();
    let ok = false;
    for (let i = 0; i < 300 && !ok; i++) {
      const info = String(await probe.call('CLUSTER', 'INFO'));
      ok = /cluster_state:ok/.test(info) && new RegExp(`cluster_known_nodes:${masters}\\b`).test(info);
      if (!ok) await sleep(100);
    }
    probe.disconnect();
    if (!ok) throw new Error(`the cluster node on ${s.port} did not report cluster_state:ok with ${masters} nodes within 30 s`);
  }
  return {
    kind: 'cluster',
    own: true,
    env: { REDIS_CLUSTER_NODES: nodes.join(',') },
    nodes,
    stop: async () => {
      await Promise.all(started.map((s) => stopChild(s.child, 2_000)));
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An existing Redis (URL) or Cluster (host:port list): ours only to read, never to flush. */
export function existing({ url, clusterNodes }) {
  if (clusterNodes) return { kind: 'cluster', own: false, env: { REDIS_CLUSTER_NODES: clusterNodes }, nodes: clusterNodes.split(','), stop: async () => {} };
  const u = new URL(url);
  return { kind: 'single', own: false, env: { REDIS_URL: url }, nodes: [`${u.hostname}:${u.port || 6379}`], stop: async () => {} };
}

/** Plain connections to every master (a Cluster's masters from CLUSTER NODES), for INFO. */
export async function masterClients(target) {
  const open = async (hostPort) => {
    const [host, port] = hostPort.split(':');
    const c = new Redis({ host, port: Number(port), lazyConnect: true, maxRetriesPerRequest: 1 });
    c.on('error', () => {});
    await c.connect();
    return c;
  };
  if (target.kind === 'single') {
    const url = target.env.REDIS_URL;
    const c = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    c.on('error', () => {});
    await c.connect();
    return [{ name: target.nodes[0], client: c }];
  }
  const seed = await open(target.nodes[0]);
  const lines = String(await seed.call('CLUSTER', 'NODES')).trim().split('\n');
  seed.disconnect();
  const masters = lines
    .map((l) => l.split(' '))
    .filter((f) => f[2].includes('master') && !f[2].includes('fail'))
    .map((f) => ({ addr: f[1].split('@')[0], slots: f.slice(8).join(' ') }))
    .sort((a, b) => a.addr.localeCompare(b.addr));
  return Promise.all(masters.map(async (m) => ({ name: `${m.addr} (slots ${m.slots})`, client: await open(m.addr) })));
}

/** One master's counters now. */
async function readMaster({ name, client }) {
  const text = await client.info('all');
  const info = parseInfo(text);
  const commands = {};
  let calls = 0;
  for (const [k, v] of Object.entries(info)) {
    if (!k.startsWith('cmdstat_')) continue;
    const cmd = k.slice(8);
    // Calls answered with an error (a NOSCRIPT before ioredis falls back to EVAL) did no work.
    const field = (name) => Number(new RegExp(`(?:^|,)${name}=(\\d+)`).exec(v)?.[1] ?? 0);
    const n = field('calls') - field('failed_calls') - field('rejected_calls');
    if (ADMIN.has(cmd)) continue;
    commands[cmd] = n;
    calls += n;
  }
  const db0 = /keys=(\d+)/.exec(info.db0 ?? '')?.[1];
  const statsReply = await client.call('MEMORY', 'STATS');
  const stats = memoryStats(statsReply);
  return {
    name,
    keys: Number(db0 ?? 0),
    usedMemory: Number(info.used_memory),
    ...stats,
    cpuMs: (Number(info.used_cpu_sys) + Number(info.used_cpu_user)) * 1000,
    calls,
    commands,
    netIn: Number(info.total_net_input_bytes),
    netOut: Number(info.total_net_output_bytes),
    // This INFO reply is counted in the next snapshot's output bytes: left out of the difference.
    infoBytes: Buffer.byteLength(text) + 16 + respBytes(statsReply),
    at: performance.now(),
  };
}

export async function snapshot(masters) {
  return Promise.all(masters.map(readMaster));
}

/** The size of a reply as RESP2 puts it on the wire (integers, bulk strings, arrays). */
function respBytes(v) {
  if (Array.isArray(v)) return `*${v.length}\r\n`.length + v.reduce((sum, x) => sum + respBytes(x), 0);
  if (typeof v === 'number') return `:${v}\r\n`.length;
  const len = Buffer.byteLength(String(v));
  return `$${len}\r\n`.length + len + 2;
}

/**
 * MEMORY STATS, reduced to what per-device figures need: the dataset (allocated memory less
 * Redis's own overhead: clients' buffers, script caches, the keyspace's hash tables) and the hash
 * tables' size. The tables grow by doubling, so a used_memory difference jumps by megabytes when
 * one doubles; the dataset difference plus an average table cost per key does not.
 */
function memoryStats(reply) {
  const flat = {};
  for (let i = 0; i + 1 < reply.length; i += 2) flat[reply[i]] = reply[i + 1];
  const db = {};
  const dbReply = flat['db.0'] ?? [];
  for (let i = 0; i + 1 < dbReply.length; i += 2) db[dbReply[i]] = Number(dbReply[i + 1]);
  return {
    datasetBytes: Number(flat['dataset.bytes'] ?? 0),
    tableBytes: (db['overhead.hashtable.main'] ?? 0) + (db['overhead.hashtable.expires'] ?? 0) + (db['overhead.hashtable.slot-to-keys'] ?? 0),
  };
}

/** What happened between two snapshots, per master and in total. */
export function diff(a, b) {
  const per = b.map((m, i) => {
    const p = a[i];
    const commands = {};
    for (const [k, v] of Object.entries(m.commands)) if (v - (p.commands[k] ?? 0) > 0) commands[k] = v - (p.commands[k] ?? 0);
    return {
      name: m.name,
      keys: m.keys,
      keysDelta: m.keys - p.keys,
      memoryDelta: m.usedMemory - p.usedMemory,
      datasetDelta: m.datasetBytes - p.datasetBytes,
      tableBytes: m.tableBytes,
      usedMemory: m.usedMemory,
      cpuMs: m.cpuMs - p.cpuMs,
      calls: m.calls - p.calls,
      commands,
      netIn: m.netIn - p.netIn,
      netOut: m.netOut - p.netOut - p.infoBytes,
      wallMs: m.at - p.at,
    };
  });
  const sum = (f) => per.reduce((s, m) => s + m[f], 0);
  const commands = {};
  for (const m of per) for (const [k, v] of Object.entries(m.commands)) commands[k] = (commands[k] ?? 0) + v;
  return {
    per,
    keys: sum('keys'),
    memoryDelta: sum('memoryDelta'),
    datasetDelta: sum('datasetDelta'),
    keysDelta: sum('keysDelta'),
    // The keyspace's hash tables per key as they stand (dict entries, key objects, bucket slots).
    tableBytesPerKey: sum('tableBytes') / Math.max(1, sum('keys')),
    usedMemory: sum('usedMemory'),
    cpuMs: sum('cpuMs'),
    calls: sum('calls'),
    commands,
    netIn: sum('netIn'),
    netOut: sum('netOut'),
    wallMs: Math.max(...per.map((m) => m.wallMs)),
  };
}

/**
 * The event log's memory: every stream under the prefix (found by SCAN ... TYPE stream, so the
 * layout does not matter), with its length. `known` ({ master index, key } from an earlier call)
 * skips the SCAN, which is slow on a big keyspace.
 */
export async function streams(masters, prefix, known = null) {
  let list = known;
  if (!list) {
    list = [];
    for (const [index, { client }] of masters.entries()) {
      let cursor = '0';
      do {
        const [next, found] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'TYPE', 'stream', 'COUNT', 5000);
        cursor = next;
        for (const key of found) list.push({ index, key });
      } while (cursor !== '0');
    }
  }
  let bytes = 0;
  let entries = 0;
  for (const { index, key } of list) {
    const { client } = masters[index];
    bytes += Number((await client.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) ?? 0);
    entries += Number(await client.xlen(key));
  }
  return { keys: list.length, bytes, entries, list };
}

/** Deletes the simulation's keys from a Redis that is not ours (SCAN + UNLINK per master). */
export async function removePrefix(masters, prefix) {
  let removed = 0;
  for (const { client } of masters) {
    let cursor = '0';
    do {
      const [next, found] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 5000);
      cursor = next;
      for (const k of found) removed += Number(await client.unlink(k));
    } while (cursor !== '0');
  }
  return removed;
}

export async function resetStats(masters) {
  await Promise.all(masters.map(({ client }) => client.config('RESETSTAT')));
}

export function closeMasters(masters) {
  for (const { client } of masters) client.disconnect();
}
