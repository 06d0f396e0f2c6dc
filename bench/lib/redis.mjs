// The bench's own Redis: a redis-server on a free loopback port without persistence, so the bench
// neither disturbs nor is disturbed by whatever runs on 127.0.0.1:6379.
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import Redis from 'ioredis';
import { freePort, sleep, spawnTracked, stopChild } from './procs.mjs';

export async function startRedis() {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
  client.on('error', () => {});
  let child = await spawnRedis(port, client);
  return {
    url,
    port,
    get pid() {
      return child.pid;
    },
    client,
    /**
     * A new redis-server on the same port, before each server's run: every server starts on the
     * same empty Redis. FLUSHALL was not enough: the gateway's Redis CPU per heartbeat read about
     * 1.4x higher on a Redis that had just held and freed the baseline's 10k devices than on a
     * fresh one (12.3-13.6 against 8.3-9.1 ms per 1k at 10k/s), the baseline's not at all, so the
     * order the two ran in leaked into their ratio. Clients of the old process reconnect.
     */
    async restart() {
      client.disconnect();
      await stopChild(child, 2_000);
      child = await spawnRedis(port, client);
    },
    /** Empties the Redis in place (for clients that stay connected across it). */
    async reset() {
      await client.flushall();
      await client.config('RESETSTAT');
    },
    async stats() {
      return readStats(client);
    },
    /**
     * Watches MONITOR for sampleMs and counts what the server under test sent: commands from a
     * client connection (round trips) and commands a Lua script ran inside Redis. A raw socket
     * reads the monitor lines (`+<time> [<db> <client address | lua>] "<command>" ...`).
     */
    monitor(sampleMs) {
      return new Promise((resolve, reject) => {
        const fromClients = {};
        const insideLua = {};
        let clientTotal = 0;
        let luaTotal = 0;
        let buffered = '';
        const socket = net.connect(port, '127.0.0.1', () => socket.write('MONITOR\r\n'));
        socket.setEncoding('utf8');
        socket.on('error', reject);
        socket.on('data', (chunk) => {
          buffered += chunk;
          const lines = buffered.split('\r\n');
          buffered = lines.pop();
          for (const line of lines) {
            const m = /^\+[\d.]+ \[\d+ ([^\]]+)\] "([^"]+)"/.exec(line);
            if (!m) continue;
            const name = m[2].toLowerCase();
            if (m[1] === 'lua') {
              luaTotal++;
              insideLua[name] = (insideLua[name] ?? 0) + 1;
            } else {
              clientTotal++;
              fromClients[name] = (fromClients[name] ?? 0) + 1;
            }
          }
        });
        setTimeout(() => {
          socket.destroy();
          resolve({ clientTotal, luaTotal, fromClients, insideLua });
        }, sampleMs);
      });
    },
    async stop() {
      client.disconnect();
      await stopChild(child, 2_000);
    },
  };
}

/** Starts redis-server on `port` and connects `client` to it. */
async function spawnRedis(port, client) {
  const child = spawnTracked('redis-server', 'redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxclients', '1000',
  ]);
  for (let i = 0; i < 100; i++) {
    try {
      await client.connect();
      break;
    } catch {
      if (child.exitCode !== null) throw new Error(`redis-server exited:\n${child.output()}`);
      await sleep(50);
    }
  }
  if (client.status !== 'ready') throw new Error(`redis-server did not answer on ${port}:\n${child.output()}`);
  return child;
}

/** A Redis's counters now (INFO all): commands run and their time, socket reads and writes, CPU, memory; and its process id. */
export async function readStats(client) {
  const info = parseInfo(await client.info('all'));
  const commands = {};
  const usec = {};
  for (const [k, v] of Object.entries(info)) {
    if (!k.startsWith('cmdstat_')) continue;
    commands[k.slice(8)] = Number(/calls=(\d+)/.exec(v)?.[1] ?? 0);
    usec[k.slice(8)] = Number(/usec=(\d+)/.exec(v)?.[1] ?? 0);
  }
  return {
    totalCommands: Number(info.total_commands_processed),
    // Socket reads and writes Redis made (each read is a wakeup of its event loop).
    reads: Number(info.total_reads_processed ?? 0),
    writes: Number(info.total_writes_processed ?? 0),
    cpuMs: (Number(info.used_cpu_sys) + Number(info.used_cpu_user)) * 1000,
    usedMemory: Number(info.used_memory),
    pid: Number(info.process_id),
    commands,
    // Time Redis spent executing each command (INFO commandstats; a script's EVALSHA includes
    // the commands it ran, which are also counted under their own names).
    usec,
  };
}

export function parseInfo(text) {
  const out = {};
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

export function redisVersion() {
  try {
    return /v=(\S+)/.exec(execFileSync('redis-server', ['--version']).toString())?.[1] ?? 'unknown';
  } catch {
    return 'not found';
  }
}
