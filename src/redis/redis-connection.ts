import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import Redis, { Cluster, Command, RedisOptions } from 'ioredis';
import { AppConfig, RedisTarget } from '../config/app-config';

export type RedisClient = Redis | Cluster;

/**
 * The Redis connections, or none in embedded mode: `client` for commands (auto-pipelined: the
 * commands of many devices issued in one event-loop turn go out as one write), `beats` for
 * heartbeats, session ends and the sweeper's claims, and `pub`/`sub` for the Socket.IO adapter and the pub/sub
 * probe. Commands are bounded: they fail after REDIS_COMMAND_TIMEOUT_MS, and while a link is down
 * they fail at once instead of queueing, so REST answers 503 fast rather than hanging for a minute.
 * Heartbeats wait longer (twice the shortest interval, less than any TTL): under load a late answer is still an answer,
 * and giving up would report a refreshed session as failed. They share a connection with session
 * ends and the sweeper's claims so that Redis applies a heartbeat sent before an end or a claim
 * before it; a burst of ends (sockets dropping by the thousand) then leaves `client`, and the
 * handshakes on it, free (bench/session-ends-ab.mjs: a handshake in a burst of 10k ends 210 -> 45 ms).
 */
@Injectable()
export class RedisConnection implements OnApplicationShutdown {
  private readonly logger = new Logger(RedisConnection.name);
  readonly client: RedisClient | null;
  readonly beats: RedisClient | null;
  readonly pub: RedisClient | null;
  readonly sub: RedisClient | null;

  /** The latest error each client reported: ioredis rejects a failed connect() with only "Connection is closed.". */
  private readonly lastError = new Map<RedisClient, Error>();

  constructor(private readonly config: AppConfig) {
    const target = config.redis;
    const make = (role: string, autoPipelining: boolean, timeoutMs = config.redisCommandTimeoutMs, shardedSubscribers = false) => {
      if (!target) return null;
      const c = createClient(target, timeoutMs, autoPipelining, shardedSubscribers);
      c.on('error', (err: Error) => {
        this.lastError.set(c, err);
        this.logger.warn(`Redis (${role}): ${err.message}`);
      });
      return c;
    };
    this.client = make('commands', true);
    // On one Redis the heartbeat connection is not corked per turn: what it carries is batched
    // already (128 heartbeats, 128 ends, a claim per call), and a batch filled early in a long turn
    // (a saturated gateway reading a backlog) left only at the turn's end, with its timer running:
    // Redis's answer came after the timer, and 128 heartbeats were answered `unavailable` at once.
    // A Cluster keeps auto-pipelining, which groups a batch's per-partition calls by node.
    this.beats = make('heartbeats', target?.mode === 'cluster', Math.max(config.redisCommandTimeoutMs, config.heartbeat.min * 2));
    this.pub = make('publish', false);
    // On a Cluster the subscriber uses sharded pub/sub (the adapter, the instance mailbox): ioredis
    // routes SSUBSCRIBE only with shardedSubscribers, one subscriber connection per master.
    this.sub = make('subscribe', false, config.redisCommandTimeoutMs, true);
    // Every Cluster client reads the slot map again each second (SLOT_MAP_REFRESH_MS). Not
    // ioredis's slotsRefreshInterval: its timer re-arms itself when a refresh in flight at quit()
    // ends, and then refreshes a closed client every second for ever (a process that does not
    // exit). This one is unref'd and cleared at shutdown.
    const clusters = this.all.filter((c): c is Cluster => c instanceof Cluster);
    if (clusters.length > 0) {
      this.refreshTimer = setInterval(() => {
        for (const c of clusters) if (c.status === 'ready') c.refreshSlotsCache();
      }, SLOT_MAP_REFRESH_MS).unref();
    }
  }

  private readonly refreshTimer?: NodeJS.Timeout;

  get all(): RedisClient[] {
    return [this.client, this.beats, this.pub, this.sub].filter((c): c is RedisClient => c !== null);
  }

  /** Waits for every connection so the app does not start on a Redis it cannot reach. */
  async connect(): Promise<void> {
    const target = this.config.redis;
    await Promise.all(
      this.all
        .filter((c) => c.status === 'wait')
        .map((c) =>
          c.connect().catch((err: Error) => {
            const cause = this.lastError.get(c) ?? err;
            throw new RedisUnreachableError(`cannot reach Redis at ${target ? describeRedisTarget(target) : '?'}: ${cause.message}`, { cause });
          }),
        ),
    );
    await Promise.all(this.all.map(warmUp));
  }

  /** Set once the app shuts the connections down: from then on none is brought back. */
  closed = false;

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    clearInterval(this.refreshTimer);
    await Promise.all(this.all.filter((c) => c.status !== 'end').map((c) => c.quit().catch(() => c.disconnect())));
  }
}

/**
 * A Cluster client connects to each node lazily, at its first command. Without an offline queue
 * (enableOfflineQueue: false, so commands fail fast while Redis is down) the other commands of that
 * first burst find the node "connecting", are refused as if the link had closed, retried on a random
 * node, bounced back with MOVED and sent again: measured, half of a first burst of 100 SPUBLISH to
 * one slot took that detour, arrived out of order and 200 ms late. Connecting every node's link
 * up front avoids it (a node that joins later, a promoted replica, still connects lazily).
 */
async function warmUp(client: RedisClient): Promise<void> {
  if (!(client instanceof Cluster)) return;
  await Promise.all(
    client
      .nodes('all')
      .filter((node) => node.status === 'wait')
      .map((node) => node.connect().catch(() => undefined)),
  );
}

/** The start failed on Redis: the message says where it was looked for and why it failed; no stack needed. */
export class RedisUnreachableError extends Error {
  override readonly name = 'RedisUnreachableError';
}

/** Where Redis was looked for, as the operator configured it (passwords left out). */
export function describeRedisTarget(target: RedisTarget): string {
  const hosts = (list: { host: string; port: number }[]) => list.map((h) => `${h.host}:${h.port}`).join(',');
  switch (target.mode) {
    case 'url': {
      const url = new URL(target.url);
      if (url.password) url.password = '***';
      return `${url.toString()} (REDIS_URL)`;
    }
    case 'sentinel':
      return `${hosts(target.sentinels)} (REDIS_SENTINELS, master ${target.name})`;
    case 'cluster':
      return `${hosts(target.nodes)} (REDIS_CLUSTER_NODES)`;
  }
}

/**
 * How often each Cluster client reads the slot map again (one CLUSTER SLOTS on a short-lived
 * connection and a few ms of CPU per client per second). Two clients need it after a failover:
 * - The command and heartbeat clients, with auto-pipelining: ioredis 6 sends one turn's commands
 *   for a node as one pipeline, and when that node answers MOVED for several slots at once (a
 *   heartbeat batch's calls for two partitions of a demoted master), the replies differ, so it
 *   neither resends them nor reads the slot map again (it does both only when every command of
 *   the pipeline got the same redirection): each later batch went to the old node and failed the
 *   same way, and the devices of those partitions were answered `unavailable` until they expired
 *   (seen in CI: 5 devices for over 20 s after `CLUSTER FAILOVER`; ioredis issue 2075). A script
 *   call that meets MOVED also asks for a new map at once (src/redis/lua-script.ts); the timer
 *   covers the other commands.
 * - The sharded subscriber (a Cluster with shardedSubscribers). When a failover demotes a master, Redis drops that master's sharded subscriptions with an
 * unsolicited `sunsubscribe` push; ioredis 6 answers it with ONE slot-map refresh from a random node
 * and, if that map shows no change, keeps its subscribers as they are (ClusterSubscriberGroup.reset:
 * "No topology change detected"). A node that has not yet heard of the promotion (measured: tens of
 * ms after the old master, more under load) answers with the old map, and the channels of that
 * master (the mailbox, the adapter's rooms) stay unsubscribed for good: the subscriber sends no
 * commands that a MOVED could correct, and ioredis 6 has no periodic refresh by default.
 * Refreshing every second (RedisConnection's timer) bounds both to about a second after the cluster
 * agrees on the new master: the first map that shows it routes the commands to the promoted replica
 * and makes ioredis move the subscriber there and SSUBSCRIBE again.
 */
export const SLOT_MAP_REFRESH_MS = 1_000;

/**
 * Commands sent in the same turn of the event loop leave in one write, as ioredis's auto-
 * pipelining does, but by corking the socket until the turn ends (setImmediate, the point where
 * auto-pipelining sends its batch) instead of gathering them into a Pipeline object per turn:
 * that object, its promises and per-command callbacks were most of ioredis's share of a POST's
 * CPU when most turns carry one command (bench push at 1k/s, 2 alternating pairs: 0.784/0.807/
 * 0.796/0.781 -> 0.766/0.757/0.760/0.727 CPU-ms per POST). Replies are matched to commands in
 * order, as always. Used on one Redis (direct or through Sentinel); a Cluster client keeps
 * ioredis's auto-pipelining, which groups commands by the node that serves them.
 */
function corkPerTurn(client: Redis): Redis {
  const c = client as unknown as { sendCommand: (command: unknown, stream?: unknown) => unknown; stream?: import('node:net').Socket };
  const send = c.sendCommand.bind(client);
  c.sendCommand = (command, stream) => {
    const socket = c.stream;
    if (stream === undefined && socket && socket.writableCorked === 0 && client.status === 'ready') {
      socket.cork();
      setImmediate(() => socket.uncork());
    }
    return send(command, stream);
  };
  return client;
}

/** The parts of ioredis 6's Command that its command timeout uses (not in its public types). */
interface TimedCommand {
  _commandTimeoutTimer?: NodeJS.Timeout;
  isSettled?: boolean;
  reject(err: Error): void;
}

/**
 * A command times out only once the replies that had arrived by then were read. ioredis arms a
 * timer per command (commandTimeout) and rejects when it fires; Node runs due timers before it
 * polls the sockets, so when a turn of the event loop takes longer than the timeout (a process
 * past saturation reads thousands of device packets in one turn), every command sent during that
 * turn timed out at the start of the next, even though Redis had answered it long before: the
 * heartbeats of an overloaded gateway all failed at once (bench, 10k/s on a slow host: 61,557
 * `unavailable` acks in 10 s) instead of being answered late. Here the timer's rejection waits for
 * the check phase (setImmediate), which runs after that poll: a reply that is there settles the
 * command first, and a command whose Redis is really silent still fails, one turn later. ioredis
 * clears the timer (the same field) when the command settles. Installed on the prototype as this
 * module loads, so every client made here has it.
 */
function timeOutAfterPolling(): void {
  (Command.prototype as unknown as { setTimeout(this: TimedCommand, ms: number): void }).setTimeout = function (this: TimedCommand, ms: number) {
    if (this._commandTimeoutTimer) return;
    this._commandTimeoutTimer = setTimeout(() => {
      setImmediate(() => {
        if (!this.isSettled) this.reject(new Error('Command timed out'));
      });
    }, ms);
  };
}
timeOutAfterPolling();

/**
 * `autoPipelining`: the commands of one event-loop turn leave in one write; on one Redis (direct
 * or through Sentinel) by corking (corkPerTurn), on a Cluster by ioredis's auto-pipelining.
 */
export function createClient(target: RedisTarget, commandTimeoutMs: number, autoPipelining: boolean, shardedSubscribers = false): RedisClient {
  const options: RedisOptions = {
    lazyConnect: true,
    commandTimeout: commandTimeoutMs,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    connectTimeout: 5_000,
    // A forced reconnect of a half-open link waits this long for the FIN, then destroys the socket.
    disconnectTimeout: 1_000,
    retryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
  };
  const single = (client: Redis) => (autoPipelining ? corkPerTurn(client) : client);
  switch (target.mode) {
    case 'url':
      return single(new Redis(target.url, options));
    case 'sentinel':
      // failoverDetector watches the sentinels' +switch-master and moves to the new master at once.
      return single(new Redis({ ...options, sentinels: target.sentinels, name: target.name, password: target.password, failoverDetector: true }));
    case 'cluster':
      return new Cluster(target.nodes, {
        lazyConnect: true,
        shardedSubscribers,
        enableOfflineQueue: false,
        enableAutoPipelining: autoPipelining,
        clusterRetryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
        redisOptions: {
          commandTimeout: commandTimeoutMs,
          maxRetriesPerRequest: 1,
          connectTimeout: 5_000,
          disconnectTimeout: 1_000,
          password: target.password,
        },
      });
  }
}
