import type { RedisClient } from '../redis/redis-connection';
import { BoundScript } from '../redis/lua-script';
import { asStoreError, redisCall } from '../redis/redis-errors';
import { DEVICE_SAMPLE_PERIOD_MS, NETWORK_RETENTION_MS } from './network-intervals';
import { DEFAULT_EVENT_RETENTION_MS, OfflineReason } from '../events/event.types';
import { PresenceStore } from './presence.store';
import { CLAIM_EXPIRED, CONNECT, COUNT_ONLINE, DISCONNECT, HEARTBEAT, HEARTBEAT_SAMPLE, NETWORK_HISTOGRAM, ORPHANED_OWNERS, RELEASE_HELD, USER_DEVICES } from './presence.scripts';
import { AppState, DeviceView, HeartbeatUpdate, InstanceView, offlineView, SessionRef, SessionStart } from './presence.types';

/** Presence in Redis; the layout is described in presence.scripts.ts. */
export class RedisPresenceStore extends PresenceStore {
  private readonly scripts: {
    connect: BoundScript<typeof CONNECT>;
    heartbeat: BoundScript<typeof HEARTBEAT>;
    heartbeatSample: BoundScript<typeof HEARTBEAT_SAMPLE>;
    disconnect: BoundScript<typeof DISCONNECT>;
    claim: BoundScript<typeof CLAIM_EXPIRED>;
    userDevices: BoundScript<typeof USER_DEVICES>;
    networkHistogram: BoundScript<typeof NETWORK_HISTOGRAM>;
    orphanedOwners: BoundScript<typeof ORPHANED_OWNERS>;
    countOnline: BoundScript<typeof COUNT_ONLINE>;
    releaseHeld: BoundScript<typeof RELEASE_HELD>;
  };

  private readonly eventRetentionMs: number;
  private readonly eventGraceMs: number;

  /**
   * `beats` carries heartbeats and the sweeper's claims (see RedisConnection): one connection, so
   * Redis applies a heartbeat before a claim sent after it. `eventRetentionMs`: EVENT_RETENTION_HOURS.
   * `eventGraceMs`: PRESENCE_EVENT_GRACE_MS (0, the default here: every offline recorded at once).
   */
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly retentionMs: number,
    options: { eventRetentionMs?: number; eventGraceMs?: number; beats?: RedisClient } = {},
  ) {
    super();
    this.eventRetentionMs = options.eventRetentionMs ?? DEFAULT_EVENT_RETENTION_MS;
    this.eventGraceMs = options.eventGraceMs ?? 0;
    const beats = options.beats ?? redis;
    this.scripts = {
      connect: CONNECT.bind(redis),
      heartbeat: HEARTBEAT.bind(beats),
      heartbeatSample: HEARTBEAT_SAMPLE.bind(beats),
      disconnect: DISCONNECT.bind(redis),
      claim: CLAIM_EXPIRED.bind(beats),
      userDevices: USER_DEVICES.bind(redis),
      networkHistogram: NETWORK_HISTOGRAM.bind(redis),
      orphanedOwners: ORPHANED_OWNERS.bind(redis),
      countOnline: COUNT_ONLINE.bind(redis),
      releaseHeld: RELEASE_HELD.bind(redis),
    };
  }

  async connect(s: SessionStart): Promise<SessionRef | null> {
    const prev = (await this.scripts.connect({
      keys: {
        presence: this.key('presence', s.deviceId),
        device: this.key('device', s.deviceId),
        expiry: this.expiryKey(s.instanceId),
        user: this.userKey(s.userId),
        instances: this.key('instances'),
      },
      args: {
        prefix: this.prefix,
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
      },
    })) as [string, string, string] | null;
    return prev ? { deviceId: s.deviceId, sessionId: prev[0], userId: prev[1], instanceId: prev[2] } : null;
  }

  async heartbeat(u: HeartbeatUpdate): Promise<boolean> {
    const keys = { presence: this.key('presence', u.deviceId), device: this.key('device', u.deviceId), expiry: this.expiryKey(u.instanceId) };
    const args = {
      deviceId: u.deviceId,
      sessionId: u.sessionId,
      now: u.now,
      interval: u.interval,
      ttl: u.ttl,
      grace: u.grace ?? 0,
      appState: u.appState,
      network: u.network,
    };
    // Almost every heartbeat: three keys, eight arguments. A network sample (a few per device and
    // DEVICE_SAMPLE_PERIOD_MS) takes the script that also records it.
    const ok =
      u.sampleBucket !== undefined && u.network !== undefined
        ? await this.scripts.heartbeatSample({
            keys: {
              ...keys,
              network: this.key('net', u.network),
              networks: this.key('networks'),
              sampledBy: this.key('netsampled', u.network),
              votes: this.key('netvotes', u.network),
            },
            args: { ...args, network: u.network, sampleBucket: String(u.sampleBucket), networkRetention: NETWORK_RETENTION_MS, samplePeriod: DEVICE_SAMPLE_PERIOD_MS },
          })
        : await this.scripts.heartbeat({ keys, args });
    return ok === 1;
  }

  async disconnect(sessions: readonly SessionRef[], now: number, reason: OfflineReason): Promise<number> {
    if (sessions.length === 0) return 0;
    return (await this.scripts.disconnect({
      keys: { route: this.key('instances') },
      args: { prefix: this.prefix, now, retention: this.retentionMs, reason, eventRetention: this.eventRetentionMs, eventGrace: this.eventGraceMs },
      rest: sessions.flatMap((s) => [s.deviceId, s.sessionId]),
    })) as number;
  }

  async claimExpired(owner: string, now: number, limit: number, claimant?: string): Promise<SessionRef[]> {
    const rows = (await this.scripts.claim({
      keys: { expiry: this.expiryKey(owner), instance: this.key('instance', owner), instances: this.key('instances') },
      args: {
        prefix: this.prefix,
        owner,
        now,
        limit,
        retention: this.retentionMs,
        eventRetention: this.eventRetentionMs,
        own: claimant === owner ? '1' : '0',
        eventGrace: this.eventGraceMs,
      },
    })) as [string, string, string][];
    return rows.map(([deviceId, sessionId, userId]) => ({ deviceId, sessionId, userId, instanceId: owner }));
  }

  async releaseHeldOfflines(now: number, limit: number): Promise<number> {
    return (await this.scripts.releaseHeld({
      keys: { due: this.key('heldoff', 'due') },
      args: { prefix: this.prefix, now, limit, eventRetention: this.eventRetentionMs },
    })) as number;
  }

  async orphanedOwners(): Promise<string[]> {
    return (await this.scripts.orphanedOwners({ keys: { instances: this.key('instances') }, args: { prefix: this.prefix } })) as string[];
  }

  async getDevices(deviceIds: readonly string[], now: number): Promise<(DeviceView | null)[]> {
    if (deviceIds.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of deviceIds) pipeline.hgetall(this.key('device', id));
    const results = (await redisCall(pipeline.exec())) ?? [];
    return deviceIds.map((deviceId, i) => {
      const [err, hash] = results[i] ?? [new Error('no reply'), null];
      if (err) throw asStoreError(err);
      const view = toView(deviceId, hash as Record<string, string>, now);
      // Redis forgets by its own clock (PEXPIRE); this keeps the rule exact on the caller's clock too.
      return view && !view.online && (view.lastSeenAt ?? 0) + this.retentionMs <= now ? null : view;
    });
  }

  async userDeviceIds(userId: string, now: number): Promise<string[]> {
    return (await this.scripts.userDevices({ keys: { user: this.userKey(userId) }, args: { forgetBefore: now - this.retentionMs } })) as string[];
  }

  async listUserDevices(userId: string, now: number): Promise<DeviceView[]> {
    const views = await this.getDevices(await this.userDeviceIds(userId, now), now);
    return views.filter((v): v is DeviceView => v !== null && v.userId === userId);
  }

  async countOnline(now: number): Promise<number> {
    return (await this.scripts.countOnline({ keys: { instances: this.key('instances') }, args: { prefix: this.prefix, now } })) as number;
  }

  /** Each instance has its own key with a real TTL, so a killed one disappears by itself. */
  async touchInstance(instance: InstanceView, ttlMs: number): Promise<void> {
    const record: InstanceRecord = { online: instance.online, lastSeenAt: instance.lastSeenAt, expiresAt: instance.lastSeenAt + ttlMs };
    await redisCall(
      Promise.all([
        this.redis.set(this.key('instance', instance.instanceId), JSON.stringify(record), 'PX', ttlMs),
        this.redis.sadd(this.key('instances'), instance.instanceId),
      ]),
    );
  }

  async listInstances(now: number): Promise<InstanceView[]> {
    const ids = await redisCall(this.redis.smembers(this.key('instances')));
    if (ids.length === 0) return [];
    const records = await redisCall(this.redis.mget(...ids.map((id) => this.key('instance', id))));
    const live: InstanceView[] = [];
    ids.forEach((instanceId, i) => {
      const raw = records[i];
      const r = raw ? (JSON.parse(raw) as InstanceRecord) : null;
      if (r && r.expiresAt > now) live.push({ instanceId, online: r.online, lastSeenAt: r.lastSeenAt });
    });
    // A dead instance leaves the set once its sessions are swept (CLAIM_EXPIRED), not here.
    return live.sort((a, b) => a.instanceId.localeCompare(b.instanceId));
  }

  async removeInstance(instanceId: string): Promise<void> {
    await redisCall(Promise.all([this.redis.del(this.key('instance', instanceId)), this.redis.srem(this.key('instances'), instanceId)]));
  }

  async networkHistogram(network: string, now: number): Promise<Record<string, number>> {
    const flat = (await this.scripts.networkHistogram({
      keys: { network: this.key('net', network), networks: this.key('networks') },
      args: { network, sampledAfter: now - NETWORK_RETENTION_MS },
    })) as string[];
    const histogram: Record<string, number> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) histogram[String(flat[i])] = Number(flat[i + 1]);
    return histogram;
  }

  async listNetworks(now: number, limit: number): Promise<{ network: string; histogram: Record<string, number> }[]> {
    await redisCall(this.redis.zremrangebyscore(this.key('networks'), '-inf', now - NETWORK_RETENTION_MS));
    const networks = await redisCall(this.redis.zrevrange(this.key('networks'), 0, limit - 1));
    const histograms = await Promise.all(networks.map((n) => this.networkHistogram(n, now)));
    return networks.map((network, i) => ({ network, histogram: histograms[i] ?? {} }));
  }

  /** A real write and read, as the readiness probe wants, not only PING. */
  async ping(): Promise<void> {
    const key = this.key('health', String(process.pid));
    const token = String(Math.random());
    const [, got] = await redisCall(Promise.all([this.redis.set(key, token, 'PX', 10_000), this.redis.get(key)]));
    if (got !== token) throw new Error('Redis read did not return what was written');
  }

  private key(...parts: string[]): string {
    return this.prefix + parts.join(':');
  }

  private expiryKey(instanceId: string): string {
    return this.key('presence:expiry', instanceId);
  }

  private userKey(userId: string): string {
    return this.key('user', userId, 'devices');
  }
}

interface InstanceRecord {
  online: number;
  lastSeenAt: number;
  expiresAt: number;
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
