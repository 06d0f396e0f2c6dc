import { ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, Server, Socket, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { freePort, pingRedis } from './find-redis';

/** Polls `check` until it returns true or `timeoutMs` passes (app.ts's, without loading the app: the cluster run's global setup uses this file). */
async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, stepMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}

/** A redis-server of the test's own on loopback; `persistent` keeps data across restarts (AOF). */
export class RedisServer {
  process?: ChildProcess;
  readonly dir = mkdtempSync(join(tmpdir(), 'pg-redis-'));

  constructor(
    readonly port: number,
    private readonly extra: string[] = [],
  ) {}

  static async create(extra: string[] = []): Promise<RedisServer> {
    return new RedisServer(await freePort(), extra);
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.process = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', ...this.extra], {
      stdio: 'ignore',
    });
    const child = this.process;
    await waitFor(() => {
      if (child.exitCode !== null) throw new Error(`redis-server ${this.extra.join(' ')} on port ${this.port} exited with code ${child.exitCode}`);
      return pingRedis(this.port);
    }, 10_000, 25);
    return this;
  }

  kill(): void {
    this.process?.kill('SIGKILL');
  }

  /** Freezes the server (SIGSTOP): connections stay open, commands queue unanswered. */
  pause(): void {
    this.process?.kill('SIGSTOP');
  }

  resume(): void {
    this.process?.kill('SIGCONT');
  }

  /** SIGKILL, resolved once the process is gone (and with it every connection it held). */
  async stop(): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }
}

/** One sentinel watching `master` (quorum 1, fast failure detection), for failover tests. */
export async function startSentinel(masterPort: number, name: string): Promise<{ port: number; process: ChildProcess }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'pg-sentinel-'));
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${name} 127.0.0.1 ${masterPort} 1`,
      `sentinel down-after-milliseconds ${name} 1000`,
      `sentinel failover-timeout ${name} 5000`,
      `sentinel parallel-syncs ${name} 1`,
    ].join('\n'),
  );
  const child = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
  await waitFor(() => pingRedis(port), 10_000, 25);
  return { port, process: child };
}

export async function sentinelMaster(port: number, name: string): Promise<number> {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true });
  try {
    await client.connect();
    const [, masterPort] = (await client.call('SENTINEL', 'get-master-addr-by-name', name)) as [string, string];
    return Number(masterPort);
  } finally {
    client.disconnect();
  }
}

/**
 * Resolves once the replica has everything the master accepted so far: a write of ours after
 * them is acknowledged by one replica (WAIT), and the replication stream keeps order.
 */
export async function replicaCaughtUp(masterPort: number, timeoutMs = 5_000): Promise<void> {
  const client = new Redis({ port: masterPort, host: '127.0.0.1', lazyConnect: true });
  try {
    await client.connect();
    await client.set('test:replication-marker', String(Date.now()));
    const acked = (await client.call('WAIT', '1', String(timeoutMs))) as number;
    if (acked < 1) throw new Error(`no replica acknowledged within ${timeoutMs} ms`);
  } finally {
    client.disconnect();
  }
}

export async function replicationInfo(port: number): Promise<string> {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true });
  try {
    await client.connect();
    return await client.info('replication');
  } finally {
    client.disconnect();
  }
}

/**
 * A TCP proxy that can freeze the connections it already carries: nothing is forwarded any more,
 * yet nothing is closed, which is how a half-open link (a failover behind a NAT) looks to a
 * client. Connections made after the freeze pass normally.
 */
export class FreezableProxy {
  private readonly pairs: [Socket, Socket][] = [];
  private readonly all = new Set<Socket>();
  private server?: Server;
  port = 0;

  /** Where new connections go: change it to play a load balancer moving traffic elsewhere. */
  constructor(public targetPort: number) {}

  async start(): Promise<this> {
    this.server = createServer((client) => {
      const upstream = connect(this.targetPort, '127.0.0.1');
      client.pipe(upstream);
      upstream.pipe(client);
      const close = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', close);
      upstream.on('error', close);
      client.on('close', close);
      upstream.on('close', close);
      this.pairs.push([client, upstream]);
      this.all.add(client).add(upstream);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  freeze(): void {
    for (const [client, upstream] of this.pairs.splice(0)) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
      // Closing from the client side would normally reach Redis; a frozen link swallows that too.
      client.removeAllListeners('end');
      client.on('end', () => undefined);
      client.on('close', () => upstream.destroy());
    }
  }

  async stop(): Promise<void> {
    for (const socket of this.all) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

export interface ClusterNode {
  server: RedisServer;
  id: string;
  role: 'master' | 'replica';
  /** A replica's master (its node id). */
  masterId?: string;
  /** A master's slot ranges, e.g. ["0-5460"]. */
  slots: string[];
}

/**
 * One cluster-enabled node on fresh ports. A port free when it was picked can be taken before the
 * node binds it (another worker's server; seen as "exited with code 1" in the cluster project's
 * global setup): the node is then started again on other ports, up to three times.
 */
async function startClusterNode(nodeTimeoutMs: number): Promise<RedisServer> {
  for (let attempt = 1; ; attempt++) {
    const node = await RedisServer.create(['--cluster-enabled', 'yes', '--cluster-port', String(await freePort()), '--cluster-node-timeout', String(nodeTimeoutMs), '--appendonly', 'no']);
    try {
      return await node.start();
    } catch (err) {
      if (attempt >= 3 || node.process?.exitCode === null) throw err;
    }
  }
}

export interface RedisCluster {
  nodes: RedisServer[];
  /** REDIS_CLUSTER_NODES for the gateway: every node, host:port comma-separated. */
  spec: string;
  kill(): void;
  /** SIGKILL every node, resolved once they are gone. */
  stop(): Promise<void>;
  /** Who is master of what right now (CLUSTER NODES, as a live node sees it). */
  topology(): Promise<ClusterNode[]>;
  /** Resolves once every live node reports cluster_state:ok and every replica's link to its master is up. */
  healthy(timeoutMs?: number): Promise<void>;
  /**
   * CLUSTER FAILOVER on `replica`, resolved once it is a master. Redis aborts a manual failover it
   * could not finish in 5 s (seen under load): it is asked again every 5.5 s rather than waited on
   * for nothing.
   */
  failOver(replica: ClusterNode, timeoutMs?: number): Promise<void>;
}

/** Whether a master serves `slot` (its ranges: "0-5460", or "42" for one slot). */
export function servesSlot(node: ClusterNode, slot: number): boolean {
  return node.slots.some((r) => {
    const [lo, hi] = r.split('-').map(Number);
    return slot >= lo! && slot <= (hi ?? lo)!;
  });
}

/**
 * A Redis Cluster on loopback, created with redis-cli --cluster create: `masters` masters, each
 * with `replicas` replicas (for failover tests). Slots are split evenly (redis-cli's contiguous
 * ranges), no persistence.
 */
export async function startRedisCluster(opts: { masters?: number; replicas?: 0 | 1; nodeTimeoutMs?: number } = {}): Promise<RedisCluster> {
  const masters = opts.masters ?? 3;
  const replicas = opts.replicas ?? 0;
  // Each node's cluster bus gets a free port of its own: by default Redis takes port + 10000, and
  // refuses to start when that passes 65535 (a free port above 55535: about one in five here).
  const nodes = await Promise.all(Array.from({ length: masters * (1 + replicas) }, () => startClusterNode(opts.nodeTimeoutMs ?? 2000)));
  const { execFileSync } = await import('node:child_process');
  execFileSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'], {
    stdio: 'ignore',
  });
  const byPort = new Map(nodes.map((n) => [n.port, n]));
  const live = () => nodes.filter((n) => n.process && n.process.exitCode === null && n.process.signalCode === null);
  const topology = async (): Promise<ClusterNode[]> => {
    const text = (await onNode(live()[0]!.port, (c) => c.call('CLUSTER', 'NODES'))) as string;
    return text
      .trim()
      .split('\n')
      .map((line) => line.split(' '))
      .filter((f) => !f[2]!.includes('fail') && byPort.has(Number(f[1]!.split(/[:@]/)[1])))
      .map((f) => ({
        server: byPort.get(Number(f[1]!.split(/[:@]/)[1]))!,
        id: f[0]!,
        role: f[2]!.includes('master') ? ('master' as const) : ('replica' as const),
        ...(f[3] !== '-' ? { masterId: f[3] } : {}),
        slots: f.slice(8),
      }));
  };
  const healthy = async (timeoutMs = 20_000) => {
    await waitFor(
      async () => {
        for (const n of live()) {
          const ok = await onNode(n.port, async (c) => {
            if (!/cluster_state:ok/.test((await c.call('CLUSTER', 'INFO')) as string)) return false;
            const info = await c.info('replication');
            return !/role:slave/.test(info) || /master_link_status:up/.test(info);
          }).catch(() => false);
          if (!ok) return false;
        }
        const roles = await topology();
        return roles.filter((r) => r.role === 'master' && r.slots.length > 0).length === masters && roles.filter((r) => r.role === 'replica').length === masters * replicas;
      },
      timeoutMs,
      100,
    );
  };
  const failOver = async (replica: ClusterNode, timeoutMs = 20_000) => {
    let asked = 0;
    await waitFor(
      async () => {
        if ((await topology()).find((t) => t.id === replica.id)?.role === 'master') return true;
        if (Date.now() - asked > 5_500) {
          asked = Date.now();
          await onNode(replica.server.port, (c) => c.call('CLUSTER', 'FAILOVER')).catch(() => undefined);
        }
        return false;
      },
      timeoutMs,
      100,
    );
  };
  await healthy();
  return {
    nodes,
    spec: nodes.map((n) => `127.0.0.1:${n.port}`).join(','),
    kill: () => nodes.forEach((n) => n.kill()),
    stop: async () => {
      await Promise.all(nodes.map((n) => n.stop()));
    },
    topology,
    healthy,
    failOver,
  };
}

/** Runs `fn` with a fresh plain client on one node. */
export async function onNode<T>(port: number, fn: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    return await fn(client);
  } finally {
    client.disconnect();
  }
}
