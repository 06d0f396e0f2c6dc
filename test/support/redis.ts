import { randomBytes } from 'node:crypto';
import Redis, { Cluster } from 'ioredis';
import { FLOOR_PERIOD_MS } from '../../src/events/event-log.script';
import { TIPS_MAX_AGE_MS } from '../../src/events/redis-event-log';
import { KeyLayout } from '../../src/redis/partitions';

export function testRedisUrl(): string {
  const url = process.env.TEST_REDIS_URL;
  if (!url) throw new Error('TEST_REDIS_URL is not set: run the tests through jest (global-setup finds Redis)');
  return url;
}

/**
 * The Redis Cluster this run tests against, if any (`npm run test:cluster` starts one and sets
 * TEST_REDIS_CLUSTER_NODES): then gateways started with `REDIS_URL: testRedisUrl()` are pointed at
 * the cluster instead (see clusterSwitch), and a spec's own checks use testRedis() and testKeys().
 */
export function testClusterNodes(): string | undefined {
  return process.env.TEST_REDIS_CLUSTER_NODES || undefined;
}

/**
 * Waits until the pull API (`GET /v1/events`) shows what was recorded before the call, in this
 * run: at once on a single Redis; on a Cluster once every partition's floor has passed it (a floor
 * tick, FLOOR_PERIOD_MS, and the tips cache, TIPS_MAX_AGE_MS), with a margin for a loaded machine.
 * A check that no event was recorded is only a check after this.
 */
export async function eventsSettled(): Promise<void> {
  if (testClusterNodes()) await new Promise((resolve) => setTimeout(resolve, FLOOR_PERIOD_MS + TIPS_MAX_AGE_MS + 1_000));
}

/**
 * The gateway environment with REDIS_URL replaced by REDIS_CLUSTER_NODES when the run is against a
 * cluster and the spec asked for the run's own Redis (a spec that starts its own server keeps it).
 */
export function clusterSwitch<T extends Record<string, string | undefined>>(env: T): T {
  const nodes = testClusterNodes();
  if (!nodes || env.REDIS_URL === undefined || env.REDIS_URL !== process.env.TEST_REDIS_URL) return env;
  const { REDIS_URL: _url, ...rest } = env;
  return { ...rest, REDIS_CLUSTER_NODES: nodes } as unknown as T;
}

/** A client on the run's Redis: a Cluster client when the run is against a cluster. */
export function testRedis(): Redis | Cluster {
  const nodes = testClusterNodes();
  if (!nodes) return new Redis(testRedisUrl());
  return new Cluster(
    nodes.split(',').map((hp) => {
      const [host, port] = hp.split(':');
      return { host: host!, port: Number(port) };
    }),
  );
}

/** Where the gateway puts its keys under `prefix` in this run (hash-tagged on a cluster, today's names otherwise). */
export function testKeys(prefix: string): KeyLayout {
  return new KeyLayout(prefix, testClusterNodes() !== undefined);
}

/** A key prefix of its own per test file, so suites can share one Redis without seeing each other. */
export function uniquePrefix(name: string): string {
  return `test:${name}:${randomBytes(4).toString('hex')}:`;
}

/** Deletes every key under `prefix` (on every master of a cluster, one key per DEL there: keys span slots). */
export async function deleteKeys(redis: Redis | Cluster, prefix: string): Promise<void> {
  for (const node of redis instanceof Cluster ? redis.nodes('master') : [redis]) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      if (keys.length) await (redis instanceof Cluster ? Promise.all(keys.map((k) => node.del(k))) : node.del(...keys));
      cursor = next;
    } while (cursor !== '0');
  }
}

/** Keys under `prefix` that Redis would keep forever (no TTL), except the named bounded indexes. */
export async function keysWithoutTtl(redis: Redis, prefix: string, except: string[] = []): Promise<number> {
  let cursor = '0';
  let count = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    for (const key of keys) {
      if (except.includes(key.slice(prefix.length))) continue;
      if ((await redis.pttl(key)) === -1) count++;
    }
    cursor = next;
  } while (cursor !== '0');
  return count;
}

/** One device's key of a kind (`presence`, `device`, `inbox`, `heldoff`) under `prefix`, in this run's layout. */
export function deviceKey(prefix: string, kind: string, deviceId: string): string {
  return `${testKeys(prefix).of(deviceId)}${kind}:${deviceId}`;
}

/**
 * A MONITOR link of its own on `node`, resolved once Redis has switched it to monitoring. Not
 * `node.monitor()`: with other suites busy on the same Redis, their lines can arrive together with
 * MONITOR's +OK, before ioredis has marked the link as monitoring; it reports each as an error
 * event, and monitor() listens for errors only once, so the next one is unhandled and fails the
 * suite ("Command queue state error"). This link keeps an error listener for its whole life.
 * Callers read what comes after it resolves (its 'monitor' events) and disconnect it.
 */
export async function openMonitor(node: Redis): Promise<Redis> {
  const monitor = node.duplicate({ monitor: true, lazyConnect: true });
  monitor.on('error', () => undefined);
  const monitoring = new Promise((resolve) => monitor.once('monitoring', resolve));
  await monitor.connect();
  await monitoring;
  return monitor;
}

/**
 * Every command naming a key under `prefix` that Redis ran while `act` ran, in Redis's order per
 * node (MONITOR on every master of a Cluster), as lowercase-named argument lists. After `act`, a
 * marker is echoed on every node: MONITOR lists commands in the order Redis ran them, so once each
 * node's monitor has shown its marker, everything `act` caused has shown up before it.
 */
export async function redisCommandsDuring(redis: Redis | Cluster, prefix: string, act: () => Promise<unknown>): Promise<string[][]> {
  const nodes = redis instanceof Cluster ? redis.nodes('master') : [redis];
  const monitors = await Promise.all(nodes.map((node) => openMonitor(node)));
  const marker = `${prefix}marker:${randomBytes(4).toString('hex')}`;
  const seen = monitors.map(() => [] as string[][]);
  const markers = monitors.map(
    (monitor, i) =>
      new Promise<void>((resolve) =>
        monitor.on('monitor', (_time: string, args: unknown[]) => {
          const command = args.map(String);
          if (command[1] === marker) return resolve();
          if (command.some((a) => a.startsWith(prefix))) seen[i]!.push([command[0]!.toLowerCase(), ...command.slice(1)]);
        }),
      ),
  );
  let timer: NodeJS.Timeout | undefined;
  try {
    await act();
    await Promise.all(nodes.map((node) => node.echo(marker)));
    // Generous: with the other suites busy on the same Cluster, MONITOR's stream can run seconds
    // behind (a CI run saw 5 s go by); the wait only ends a run that is failing anyway.
    await Promise.race([
      Promise.all(markers),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('marker not seen by MONITOR within 20 s')), 20_000))),
    ]);
  } finally {
    clearTimeout(timer);
    monitors.forEach((monitor) => monitor.disconnect());
  }
  return seen.flat();
}
