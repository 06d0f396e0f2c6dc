import { Logger } from '@nestjs/common';
import type { RedisClient } from '../redis/redis-connection';
import { BoundScript } from '../redis/lua-script';
import type { DueIndex } from '../redis/due-partitions';
import { KeyLayout } from '../redis/partitions';
import { redisCall } from '../redis/redis-errors';
import { DEVICE_SAMPLE_PERIOD_MS, NETWORK_RETENTION_MS } from './network-intervals';
import { DEFAULT_EVENT_RETENTION_MS, OfflineReason } from '../events/event.types';
import { LiveInstances, PresenceStore } from './presence.store';
import { CLAIM_EXPIRED, CONNECT, DISCONNECT, HEARTBEAT, NETWORK_SAMPLE, PARTITION_TICK, USER_DEVICES, USER_SYNC, USER_SYNC_DONE } from './presence.scripts';
import { AppState, DeviceView, HeartbeatUpdate, heartbeatIndexScore, InstanceView, knownLive, offlineView, SessionRef, SessionStart } from './presence.types';

/** User syncs queued longer than this are replayed by the partition's lease holder (the caller died). */
export const USER_SYNC_REPAIR_AFTER_MS = 2_000;
/** User syncs replayed per partition tick. */
const USER_SYNC_REPAIR_BATCH = 100;
/** An instance not reported for this long leaves the instance index (its record expired long before). */
const INSTANCE_FORGET_MS = 600_000;

export interface RedisPresenceOptions {
  /** EVENT_RETENTION_HOURS. */
  eventRetentionMs?: number;
  /** PRESENCE_EVENT_GRACE_MS (0, the default here: every offline recorded at once). */
  eventGraceMs?: number;
  /** Carries heartbeats, session ends and the sweeper's claims (see RedisConnection). */
  beats?: RedisClient;
  /** How long countOnline's sum over the partitions is reused (0: always counted). */
  countCacheMs?: number;
  /** How long the list of live instances a connect consults is reused (0: read at every connect). */
  liveCacheMs?: number;
  /** How long a heartbeat waits for others to share its script call (HEARTBEAT_BATCH_WINDOW_MS; 0: the same event-loop turn only). */
  beatWindowMs?: number;
}

/**
 * How long the first heartbeat of a batch waits for others to join it (see heartbeat). A few ms
 * cost a device nothing it could notice (its next heartbeat is seconds away). 2 ms, against one
 * call per heartbeat, `npm run bench` measured server CPU per 1k heartbeats 214 -> 154 ms at 1k/s
 * and 72.5 -> 59.7 at 10k/s, Redis CPU 61 -> 34 and 18.2 -> 15.7 (10k devices). 4 ms, against 2,
 * halves the calls again at 5k-10k/s: Redis CPU-ms per 1k 15.6, 11.8 -> 12.4, 10.2 at 5k/s and
 * 10.0, 9.5 -> 9.1, 8.3 at 10k/s, the ack's p50 2.2 -> 3.5 ms (docs/performance.md, fifteenth
 * round). Waiting only for the same event-loop turn helped at 10k/s but not at 1k/s.
 */
const HEARTBEAT_BATCH_WINDOW_MS = 4;

/**
 * Heartbeats per HEARTBEAT call: a bound on the script's run (each heartbeat is a few µs of Redis
 * time) and on the call's size.
 */
const MAX_BEAT_BATCH = 128;

/**
 * How long the first session end of a batch waits for others (see disconnect): as heartbeats. When
 * thousands of sockets close at once (a network partition, a load balancer restart), one call per
 * end kept Redis busy for seconds, and handshakes and heartbeats queued behind them. The batches
 * go on the heartbeat connection, so a handshake (on the command connection) is not queued behind
 * a burst of them: Redis serves its connections in turn.
 */
const END_BATCH_WINDOW_MS = 2;

/** Session ends per DISCONNECT call: a bound on the script's run (an end is tens of µs of Redis time, with its events). */
const MAX_END_BATCH = 128;

interface QueuedEnd {
  sessions: readonly SessionRef[];
  now: number;
  reason: OfflineReason;
  resolve(ended: number): void;
  reject(err: unknown): void;
}

interface QueuedBeat {
  u: HeartbeatUpdate;
  resolve(ok: boolean): void;
  reject(err: unknown): void;
}

/** One queued user sync, as the device scripts encode it (see USERS in presence.scripts.ts). */
interface UserSyncRecord {
  u: string;
  d: string;
  v: string;
}

/** Presence in Redis; the layout is described in presence.scripts.ts. */
export class RedisPresenceStore extends PresenceStore {
  private readonly logger = new Logger(RedisPresenceStore.name);
  private readonly scripts: {
    connect: BoundScript<typeof CONNECT>;
    heartbeat: BoundScript<typeof HEARTBEAT>;
    networkSample: BoundScript<typeof NETWORK_SAMPLE>;
    disconnect: BoundScript<typeof DISCONNECT>;
    claim: BoundScript<typeof CLAIM_EXPIRED>;
    tick: BoundScript<typeof PARTITION_TICK>;
    userDevices: BoundScript<typeof USER_DEVICES>;
  };
  /** USER_SYNC and USER_SYNC_DONE on each connection: a sync goes where its device script went (see syncUsers). */
  private readonly userSyncs: Record<'commands' | 'beats', { sync: BoundScript<typeof USER_SYNC>; done: BoundScript<typeof USER_SYNC_DONE> }>;

  readonly keys: KeyLayout;
  private readonly eventRetentionMs: number;
  private readonly eventGraceMs: number;
  private readonly countCacheMs: number;
  private readonly liveCacheMs: number;
  /** 1 when every user's keys are in the device's partition (one partition): user syncs are applied in the device script. */
  private readonly inline: number;
  private counted?: { at: number; online: number };
  /** Heartbeats not sent yet (see heartbeat). */
  private queuedBeats: QueuedBeat[] = [];
  private beatTimer?: NodeJS.Timeout;
  private readonly beatWindowMs: number;
  /** Session ends not sent yet (see disconnect), and how many sessions they name. */
  private queuedEnds: QueuedEnd[] = [];
  private queuedEndCount = 0;
  private endTimer?: NodeJS.Timeout;
  private liveCache?: { at: number; live: Promise<LiveInstances> };

  /**
   * `keys`: the key layout, or a plain prefix (one partition, the single-Redis names). `beats`
   * carries heartbeats, session ends and the sweeper's claims (see RedisConnection): one
   * connection, so Redis applies this instance's heartbeat before an end or a claim it sends after
   * it, and a handshake's CONNECT on the other connection does not wait behind a burst of ends.
   */
  constructor(
    private readonly redis: RedisClient,
    keys: KeyLayout | string,
    private readonly retentionMs: number,
    options: RedisPresenceOptions = {},
  ) {
    super();
    this.keys = typeof keys === 'string' ? new KeyLayout(keys, false) : keys;
    this.inline = this.keys.partitions === 1 ? 1 : 0;
    this.eventRetentionMs = options.eventRetentionMs ?? DEFAULT_EVENT_RETENTION_MS;
    this.eventGraceMs = options.eventGraceMs ?? 0;
    this.countCacheMs = options.countCacheMs ?? 0;
    this.liveCacheMs = options.liveCacheMs ?? 0;
    this.beatWindowMs = options.beatWindowMs ?? HEARTBEAT_BATCH_WINDOW_MS;
    const beats = options.beats ?? redis;
    this.scripts = {
      connect: CONNECT.bind(redis),
      heartbeat: HEARTBEAT.bind(beats),
      networkSample: NETWORK_SAMPLE.bind(redis),
      disconnect: DISCONNECT.bind(beats),
      claim: CLAIM_EXPIRED.bind(beats),
      tick: PARTITION_TICK.bind(redis),
      userDevices: USER_DEVICES.bind(redis),
    };
    this.userSyncs = {
      commands: { sync: USER_SYNC.bind(redis), done: USER_SYNC_DONE.bind(redis) },
      beats: { sync: USER_SYNC.bind(beats), done: USER_SYNC_DONE.bind(beats) },
    };
  }

  get partitions(): number {
    return this.keys.partitions;
  }

  partitionOf(deviceId: string): number {
    return this.keys.partitionOf(deviceId);
  }

  async connect(s: SessionStart): Promise<SessionRef | null> {
    const P = this.keys.of(s.deviceId);
    const live = new Map(await this.liveForConnect(s.now));
    live.set(s.instanceId, 0);
    const [prev, syncs] = (await this.scripts.connect({
      keys: { presence: `${P}presence:${s.deviceId}`, device: `${P}device:${s.deviceId}`, expiry: `${P}presence:expiry` },
      args: {
        P,
        deviceId: s.deviceId,
        sessionId: s.sessionId,
        userId: s.userId,
        platform: s.platform,
        instanceId: s.instanceId,
        now: s.now,
        interval: s.interval,
        ttl: s.ttl,
        network: s.network,
        retention: this.retentionMs,
        eventRetention: this.eventRetentionMs,
        eventGrace: this.eventGraceMs,
        live: liveArg(live),
        inline: this.inline,
      },
    })) as [string[], string[]];
    await this.syncUsers(P, syncs, s.now);
    return prev.length ? { deviceId: s.deviceId, sessionId: prev[0]!, userId: prev[1]!, instanceId: prev[2]! } : null;
  }

  /**
   * Queued, and sent with the other heartbeats that arrive within HEARTBEAT_BATCH_WINDOW_MS of the
   * first: one EVALSHA per partition (HEARTBEAT) for at most MAX_BEAT_BATCH heartbeats, so a
   * heartbeat still takes one round trip, shared. A network sample follows on its own
   * (fire-and-forget).
   */
  heartbeat(u: HeartbeatUpdate): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.queuedBeats.push({ u, resolve, reject });
      if (this.queuedBeats.length >= MAX_BEAT_BATCH) this.sendBeats();
      else if (this.queuedBeats.length === 1) {
        if (this.beatWindowMs > 0) this.beatTimer = setTimeout(this.sendBeats, this.beatWindowMs);
        else setImmediate(this.sendBeats);
      }
    });
  }

  /** Sends the queued heartbeats (also before a claim: Redis then applies them first, see the constructor). */
  private readonly sendBeats = (): void => {
    if (this.beatTimer) clearTimeout(this.beatTimer);
    this.beatTimer = undefined;
    if (this.queuedBeats.length === 0) return;
    const queued = this.queuedBeats;
    this.queuedBeats = [];
    for (const [p, group] of this.keys.byPartition(queued, (b) => b.u.deviceId)) {
      const P = this.keys.at(p);
      const rest: (string | number)[] = [];
      let grace = 0;
      for (const { u } of group) {
        // A holder that knows its record live skips the record's check; see HEARTBEAT.
        const index = knownLive(u) ? (heartbeatIndexScore(u) ?? '') : '?';
        rest.push(u.deviceId, u.sessionId, u.now, u.now + u.ttl, u.ttl, index, 0);
        // Then the fields that change, as pairs after their count; one the record already holds is not written again.
        const countAt = rest.length - 1;
        const known = u.recordedInterval !== undefined;
        if (!(known && u.recordedInterval === u.interval)) rest.push('interval', u.interval);
        if (u.appState && !(known && u.recordedAppState === u.appState)) rest.push('appState', u.appState);
        if (u.network && !(known && u.recordedNetwork === u.network)) rest.push('network', u.network);
        rest[countAt] = (rest.length - countAt - 1) / 2;
        grace = Math.max(grace, u.grace ?? 0);
      }
      this.scripts.heartbeat({ keys: { route: `${P}presence:expiry` }, args: { P, grace }, rest }).then(
        (results) => {
          group.forEach(({ u, resolve }, i) => {
            const ok = (results as number[])[i] === 1;
            if (ok && u.sampleBucket !== undefined && u.network !== undefined) this.sample(u.network, u.deviceId, u.sampleBucket, u.now);
            resolve(ok);
          });
        },
        (err: unknown) => group.forEach(({ reject }) => reject(err)),
      );
    }
  };

  /**
   * Records a stable-interval sample in the network's partition and marks the network in
   * `C networks`; both sent at once, neither awaited (a lost sample only thins a histogram).
   */
  private sample(network: string, deviceId: string, bucket: number, now: number): void {
    const N = this.keys.of(network);
    this.scripts
      .networkSample({
        keys: { network: `${N}net:${network}`, sampledBy: `${N}netsampled:${network}`, votes: `${N}netvotes:${network}` },
        args: { deviceId, now, sampleBucket: String(bucket), networkRetention: NETWORK_RETENTION_MS, samplePeriod: DEVICE_SAMPLE_PERIOD_MS },
      })
      .catch((err: Error) => this.logger.warn(`network sample not recorded: ${err.message}`));
    redisCall(this.redis.zadd(`${this.keys.control}networks`, now, network)).catch((err: Error) => this.logger.warn(`network not marked: ${err.message}`));
  }

  /**
   * Queued like heartbeats, and sent with the other ends that arrive within END_BATCH_WINDOW_MS of
   * the first: per reason and partition, one DISCONNECT per MAX_END_BATCH sessions. Each session
   * keeps its own `now` as its lastSeenAt; the call's events carry the latest. A call with many
   * sessions (a drain) goes out at once, in calls of MAX_END_BATCH.
   */
  disconnect(sessions: readonly SessionRef[], now: number, reason: OfflineReason): Promise<number> {
    if (sessions.length === 0) return Promise.resolve(0);
    return new Promise<number>((resolve, reject) => {
      this.queuedEnds.push({ sessions, now, reason, resolve, reject });
      this.queuedEndCount += sessions.length;
      if (this.queuedEndCount >= MAX_END_BATCH) this.sendEnds();
      // A store whose heartbeats do not wait (beatWindowMs 0) does not hold ends either: the same event-loop turn only.
      else if (this.queuedEnds.length === 1) {
        if (this.beatWindowMs > 0) this.endTimer = setTimeout(this.sendEnds, END_BATCH_WINDOW_MS);
        else setImmediate(this.sendEnds);
      }
    });
  }

  private readonly sendEnds = (): void => {
    if (this.endTimer) clearTimeout(this.endTimer);
    this.endTimer = undefined;
    const queued = this.queuedEnds;
    if (queued.length === 0) return;
    // Heartbeats still waiting for their batch go first: a session's last heartbeat is applied before its end.
    this.sendBeats();
    this.queuedEnds = [];
    this.queuedEndCount = 0;
    type Item = { entry: number; ref: SessionRef; at: number };
    const byReason = new Map<OfflineReason, Item[]>();
    queued.forEach(({ sessions, now, reason }, entry) => {
      let items = byReason.get(reason);
      if (!items) byReason.set(reason, (items = []));
      for (const ref of sessions) items.push({ entry, ref, at: now });
    });
    const ended = new Array<number>(queued.length).fill(0);
    const calls: Promise<void>[][] = queued.map(() => []);
    for (const [reason, items] of byReason) {
      for (const [p, group] of this.keys.byPartition(items, (i) => i.ref.deviceId)) {
        for (let from = 0; from < group.length; from += MAX_END_BATCH) {
          const chunk = group.slice(from, from + MAX_END_BATCH);
          const call = this.endChunk(p, chunk, reason).then((flags) => chunk.forEach((item, i) => (ended[item.entry]! += flags[i] ?? 0)));
          for (const entry of new Set(chunk.map((i) => i.entry))) calls[entry]!.push(call);
        }
      }
    }
    queued.forEach(({ resolve, reject }, entry) => Promise.all(calls[entry]!).then(() => resolve(ended[entry]!), reject));
  };

  private async endChunk(p: number, chunk: readonly { ref: SessionRef; at: number }[], reason: OfflineReason): Promise<number[]> {
    const P = this.keys.at(p);
    let now = 0;
    const rest: (string | number)[] = [];
    for (const { ref, at } of chunk) {
      rest.push(ref.deviceId, ref.sessionId, at);
      if (at > now) now = at;
    }
    const [flags, syncs] = (await this.scripts.disconnect({
      keys: { route: `${P}presence:expiry` },
      args: { P, now, retention: this.retentionMs, reason, eventRetention: this.eventRetentionMs, eventGrace: this.eventGraceMs, inline: this.inline },
      rest,
    })) as [number[], string[]];
    await this.syncUsers(P, syncs, now, 'beats');
    return flags;
  }

  async claimExpired(partition: number, now: number, limit: number, live: LiveInstances): Promise<SessionRef[]> {
    const P = this.keys.at(partition);
    this.sendBeats();
    const [rows, syncs] = (await this.scripts.claim({
      keys: { expiry: `${P}presence:expiry` },
      args: {
        P,
        now,
        limit,
        retention: this.retentionMs,
        eventRetention: this.eventRetentionMs,
        eventGrace: this.eventGraceMs,
        live: liveArg(live),
        inline: this.inline,
      },
    })) as [[string, string, string, string][], string[]];
    await this.syncUsers(P, syncs, now, 'beats');
    return rows.map(([deviceId, sessionId, userId, instanceId]) => ({ deviceId, sessionId, userId, instanceId }));
  }

  override dueIndexes(job: 'sweep' | 'tick', now: number): readonly DueIndex[] {
    return job === 'sweep'
      ? [{ name: 'presence:expiry', dueBy: now }]
      : [
          { name: 'heldoff:due', dueBy: now },
          { name: 'usersync', dueBy: now - USER_SYNC_REPAIR_AFTER_MS },
        ];
  }

  async releaseHeldOfflines(partition: number, now: number, limit: number): Promise<number> {
    const P = this.keys.at(partition);
    const [released, syncs, stale] = (await this.scripts.tick({
      keys: { due: `${P}heldoff:due` },
      args: {
        P,
        now,
        limit,
        retention: this.retentionMs,
        eventRetention: this.eventRetentionMs,
        inline: this.inline,
        repairBefore: now - USER_SYNC_REPAIR_AFTER_MS,
        repairLimit: USER_SYNC_REPAIR_BATCH,
      },
    })) as [number, string[], string[]];
    await this.syncUsers(P, syncs, now);
    if (stale.length) await this.syncUsers(P, stale, now);
    return released;
  }

  /**
   * Applies user syncs that a script of partition P queued, grouped by the user's partition (one
   * USER_SYNC per partition, all sent together, each keeping the records' order), then removes
   * them from P's queue. A failure leaves them queued for the partition's lease holder to replay
   * (PARTITION_TICK): the device change is done, only its user.* wait. `via`: the connection the
   * device script went on, so that a burst of ends (on `beats`) stays off the commands' connection.
   * Records carry versions: one applied after a newer one (the other connection's) is skipped.
   */
  protected async syncUsers(P: string, syncs: readonly string[], now: number, via: 'commands' | 'beats' = 'commands'): Promise<void> {
    if (syncs.length === 0) return;
    const { sync, done } = this.userSyncs[via];
    try {
      const groups = this.keys.byPartition(syncs, (m) => (JSON.parse(m) as UserSyncRecord).u);
      await Promise.all(
        [...groups].map(([p, records]) => {
          const UP = this.keys.at(p);
          return sync({
            keys: { route: `${UP}usersync` },
            args: { P: UP, now, retention: this.retentionMs, eventRetention: this.eventRetentionMs },
            rest: records,
          });
        }),
      );
      // Dequeued in the background: one still queued is only applied again, as a no-op.
      const upto = new Map<string, bigint>();
      for (const m of syncs) {
        const r = JSON.parse(m) as UserSyncRecord;
        const v = BigInt(r.v);
        if ((upto.get(r.d) ?? -1n) < v) upto.set(r.d, v);
      }
      done({ keys: { queue: `${P}usersync` }, args: { P }, rest: [...upto].flatMap(([d, v]) => [d, v.toString()]) })
        .catch((err: Error) => this.logger.warn(`applied user syncs not dequeued: ${err.message}`));
    } catch (err) {
      this.logger.warn(`user syncs left for the repair pass: ${(err as Error).message}`);
    }
  }

  async getDevices(deviceIds: readonly string[], now: number): Promise<(DeviceView | null)[]> {
    if (deviceIds.length === 0) return [];
    // Single commands, not a pipeline: on a Cluster a pipeline must stay on one node; auto-pipelining batches them per node.
    const hashes = await redisCall(Promise.all(deviceIds.map((id) => this.redis.hgetall(`${this.keys.of(id)}device:${id}`))));
    return deviceIds.map((deviceId, i) => {
      const view = toView(deviceId, hashes[i] ?? {}, now);
      // Redis forgets by its own clock (PEXPIRE); this keeps the rule exact on the caller's clock too.
      return view && !view.online && (view.lastSeenAt ?? 0) + this.retentionMs <= now ? null : view;
    });
  }

  async userDeviceIds(userId: string, now: number): Promise<string[]> {
    return (await this.scripts.userDevices({
      keys: { user: `${this.keys.of(userId)}user:${userId}:devices` },
      args: { forgetBefore: now - this.retentionMs },
    })) as string[];
  }

  async listUserDevices(userId: string, now: number): Promise<DeviceView[]> {
    const views = await this.getDevices(await this.userDeviceIds(userId, now), now);
    return views.filter((v): v is DeviceView => v !== null && v.userId === userId);
  }

  /** Σ over the partitions of their sessions not yet run out (ZCOUNT), reused for countCacheMs. */
  async countOnline(now: number): Promise<number> {
    if (this.counted && now >= this.counted.at && now - this.counted.at < this.countCacheMs) return this.counted.online;
    const counts = await redisCall(
      Promise.all(Array.from({ length: this.keys.partitions }, (_, p) => this.redis.zcount(`${this.keys.at(p)}presence:expiry`, `(${now}`, '+inf'))),
    );
    const online = counts.reduce((a, b) => a + b, 0);
    this.counted = { at: now, online };
    return online;
  }

  /** Each instance has its own record with a real TTL, so a killed one disappears by itself. */
  async touchInstance(instance: InstanceView, ttlMs: number, delay = 0): Promise<void> {
    const C = this.keys.control;
    const record: InstanceRecord = { online: instance.online, lastSeenAt: instance.lastSeenAt, expiresAt: instance.lastSeenAt + ttlMs, delay: Math.round(delay) };
    this.liveCache = undefined;
    await redisCall(
      Promise.all([
        this.redis.set(`${C}instance:${instance.instanceId}`, JSON.stringify(record), 'PX', ttlMs),
        this.redis.zadd(`${C}instances`, instance.lastSeenAt, instance.instanceId),
        this.redis.zremrangebyscore(`${C}instances`, '-inf', instance.lastSeenAt - INSTANCE_FORGET_MS),
      ]),
    );
  }

  async listInstances(now: number): Promise<InstanceView[]> {
    return (await this.instanceRecords(now)).map(({ instanceId, online, lastSeenAt }) => ({ instanceId, online, lastSeenAt }));
  }

  async liveInstances(now: number): Promise<LiveInstances> {
    return new Map((await this.instanceRecords(now)).map((r) => [r.instanceId, r.delay]));
  }

  private async instanceRecords(now: number): Promise<(InstanceView & { delay: number })[]> {
    const C = this.keys.control;
    const ids = await redisCall(this.redis.zrange(`${C}instances`, '0', '-1'));
    if (ids.length === 0) return [];
    // Every record is in the control slot: one MGET, also on a Cluster.
    const records = await redisCall(this.redis.mget(...ids.map((id) => `${C}instance:${id}`)));
    const live: (InstanceView & { delay: number })[] = [];
    ids.forEach((instanceId, i) => {
      const raw = records[i];
      const r = raw ? (JSON.parse(raw) as InstanceRecord) : null;
      if (r && r.expiresAt > now) live.push({ instanceId, online: r.online, lastSeenAt: r.lastSeenAt, delay: r.delay ?? 0 });
    });
    return live.sort((a, b) => a.instanceId.localeCompare(b.instanceId));
  }

  /** The live instances a connect consults (heartbeat_timeout or instance_lost for a run-out session), reused for liveCacheMs. */
  private liveForConnect(now: number): Promise<LiveInstances> {
    const cached = this.liveCache;
    if (cached && now >= cached.at && now - cached.at < this.liveCacheMs) return cached.live;
    const live = this.liveInstances(now);
    this.liveCache = { at: now, live };
    live.catch(() => {
      if (this.liveCache?.live === live) this.liveCache = undefined;
    });
    return live;
  }

  async removeInstance(instanceId: string): Promise<void> {
    const C = this.keys.control;
    this.liveCache = undefined;
    await redisCall(Promise.all([this.redis.del(`${C}instance:${instanceId}`), this.redis.zrem(`${C}instances`, instanceId)]));
  }

  async networkHistogram(network: string, now: number): Promise<Record<string, number>> {
    const N = this.keys.of(network);
    const [last, flat] = await redisCall(Promise.all([this.redis.zscore(`${this.keys.control}networks`, network), this.redis.hgetall(`${N}net:${network}`)]));
    if (last === null || Number(last) <= now - NETWORK_RETENTION_MS) return {};
    const histogram: Record<string, number> = {};
    for (const [bucket, count] of Object.entries(flat)) histogram[bucket] = Number(count);
    return histogram;
  }

  async listNetworks(now: number, limit: number): Promise<{ network: string; histogram: Record<string, number> }[]> {
    const key = `${this.keys.control}networks`;
    await redisCall(this.redis.zremrangebyscore(key, '-inf', now - NETWORK_RETENTION_MS));
    const networks = await redisCall(this.redis.zrevrange(key, 0, limit - 1));
    const histograms = await Promise.all(networks.map((n) => this.networkHistogram(n, now)));
    return networks.map((network, i) => ({ network, histogram: histograms[i] ?? {} }));
  }

  /** A real write and read, as the readiness probe wants, not only PING. */
  async ping(): Promise<void> {
    const key = `${this.keys.control}health:${process.pid}`;
    const token = String(Math.random());
    const [, got] = await redisCall(Promise.all([this.redis.set(key, token, 'PX', 10_000), this.redis.get(key)]));
    if (got !== token) throw new Error('Redis read did not return what was written');
  }
}

interface InstanceRecord {
  online: number;
  lastSeenAt: number;
  expiresAt: number;
  /** How late the instance is in handling heartbeats (its LoadMonitor delay), as of lastSeenAt. */
  delay?: number;
}

/** `live` as the scripts take it: JSON {instanceId: graceMs} (any instance id survives it). */
function liveArg(live: LiveInstances): string {
  return JSON.stringify(Object.fromEntries([...live].map(([id, grace]) => [id, Math.max(0, Math.round(grace))])));
}

function toView(deviceId: string, h: Record<string, string>, now: number): DeviceView | null {
  if (!h.userId) return null;
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const view: DeviceView = {
    deviceId,
    userId: h.userId,
    online: !!h.sessionId && Number(h.expiresAt) > now,
    platform: h.platform,
    instanceId: h.instanceId,
    sessionId: h.sessionId,
    connectedAt: num(h.connectedAt),
    lastHeartbeatAt: num(h.lastHeartbeatAt),
    expiresAt: num(h.expiresAt),
    interval: num(h.interval),
    // A live session does not write lastSeenAt on every heartbeat: its last sign of life is its last heartbeat.
    lastSeenAt: h.sessionId ? num(h.lastHeartbeatAt) : num(h.lastSeenAt),
    appState: h.appState as AppState | undefined,
    network: h.network,
    // The seq of its last recorded event (a hash from before the grace has only `seq`).
    seq: Number(h.eventSeq ?? h.seq ?? 0),
    // Written by the push registration store (src/push) into the same device hash.
    push: h.pushProvider ? { provider: h.pushProvider } : undefined,
  };
  return view.online ? view : offlineView(view);
}
