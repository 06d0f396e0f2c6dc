import type { RedisClient } from '../redis/redis-connection';
import { defineScript, Script } from '../redis/define-script';
import { offlineView } from './memory-presence.store';
import { PresenceStore } from './presence.store';
import { CLAIM_EXPIRED, CONNECT, DISCONNECT, HEARTBEAT, USER_DEVICES } from './presence.scripts';
import { NETWORK_RETENTION_MS } from './network-intervals';
import { AppState, DeviceView, HeartbeatUpdate, InstanceView, SessionRef, SessionStart } from './presence.types';

/** Presence in Redis; the layout is described in presence.scripts.ts. */
export class RedisPresenceStore extends PresenceStore {
  private readonly scripts: Record<'connect' | 'heartbeat' | 'disconnect' | 'claim' | 'userDevices', Script>;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly retentionMs: number,
  ) {
    super();
    this.scripts = {
      connect: defineScript(this.redis, 'pgConnect', CONNECT, 4),
      heartbeat: defineScript(this.redis, 'pgHeartbeat', HEARTBEAT, 3),
      disconnect: defineScript(this.redis, 'pgDisconnect', DISCONNECT, 0),
      claim: defineScript(this.redis, 'pgClaimExpired', CLAIM_EXPIRED, 1),
      userDevices: defineScript(this.redis, 'pgUserDevices', USER_DEVICES, 1),
    };
  }

  async connect(s: SessionStart): Promise<SessionRef | null> {
    const prev = (await this.scripts.connect(
      this.key('presence', s.deviceId),
      this.key('device', s.deviceId),
      this.key('presence:expiry'),
      this.userKey(s.userId),
      s.deviceId,
      s.sessionId,
      s.userId,
      s.platform ?? '',
      s.instanceId,
      s.now,
      s.interval,
      s.ttl,
      this.prefix,
      s.network ?? '',
    )) as [string, string, string] | null;
    return prev ? { deviceId: s.deviceId, sessionId: prev[0], userId: prev[1], instanceId: prev[2] } : null;
  }

  async heartbeat(u: HeartbeatUpdate): Promise<boolean> {
    const ok = await this.scripts.heartbeat(
      this.key('presence', u.deviceId),
      this.key('device', u.deviceId),
      this.key('presence:expiry'),
      u.deviceId,
      u.sessionId,
      u.now,
      u.interval,
      u.ttl,
      u.appState ?? '',
      u.network ?? '',
      u.sampleBucket ?? '',
      this.prefix,
      NETWORK_RETENTION_MS,
    );
    return ok === 1;
  }

  async disconnect(sessions: readonly SessionRef[], now: number): Promise<number> {
    if (sessions.length === 0) return 0;
    const args = sessions.flatMap((s) => [s.deviceId, s.sessionId, s.userId]);
    return (await this.scripts.disconnect(this.prefix, now, this.retentionMs, ...args)) as number;
  }

  async claimExpired(now: number, limit: number): Promise<SessionRef[]> {
    const rows = (await this.scripts.claim(this.key('presence:expiry'), this.prefix, now, limit, this.retentionMs)) as [
      string,
      string,
      string,
      string,
    ][];
    return rows.map(([deviceId, sessionId, userId, instanceId]) => ({ deviceId, sessionId, userId, instanceId }));
  }

  async getDevices(deviceIds: readonly string[], now: number): Promise<(DeviceView | null)[]> {
    if (deviceIds.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of deviceIds) pipeline.hgetall(this.key('device', id));
    const results = (await pipeline.exec()) ?? [];
    return results.map(([err, hash], i) => {
      if (err) throw err;
      const view = toView(deviceIds[i], hash as Record<string, string>, now);
      // Redis forgets by its own clock (PEXPIRE); this keeps the rule exact on the caller's clock too.
      return view && !view.online && (view.lastSeenAt ?? 0) + this.retentionMs <= now ? null : view;
    });
  }

  async userDeviceIds(userId: string, now: number): Promise<string[]> {
    return (await this.scripts.userDevices(this.userKey(userId), now - this.retentionMs)) as string[];
  }

  async listUserDevices(userId: string, now: number): Promise<DeviceView[]> {
    const views = await this.getDevices(await this.userDeviceIds(userId, now), now);
    return views.filter((v): v is DeviceView => v !== null && v.userId === userId);
  }

  async countOnline(now: number): Promise<number> {
    return this.redis.zcount(this.key('presence:expiry'), `(${now}`, '+inf');
  }

  /** Each instance has its own key with a real TTL, so a killed one disappears by itself. */
  async touchInstance(instance: InstanceView, ttlMs: number): Promise<void> {
    const record = { online: instance.online, lastSeenAt: instance.lastSeenAt, expiresAt: instance.lastSeenAt + ttlMs };
    await Promise.all([
      this.redis.set(this.key('instance', instance.instanceId), JSON.stringify(record), 'PX', ttlMs),
      this.redis.sadd(this.key('instances'), instance.instanceId),
    ]);
  }

  async listInstances(now: number): Promise<InstanceView[]> {
    const ids = await this.redis.smembers(this.key('instances'));
    if (ids.length === 0) return [];
    const records = await this.redis.mget(...ids.map((id) => this.key('instance', id)));
    const live: InstanceView[] = [];
    const dead: string[] = [];
    ids.forEach((instanceId, i) => {
      const r = records[i] ? (JSON.parse(records[i]) as { online: number; lastSeenAt: number; expiresAt: number }) : null;
      if (r && r.expiresAt > now) live.push({ instanceId, online: r.online, lastSeenAt: r.lastSeenAt });
      else if (!r) dead.push(instanceId);
    });
    if (dead.length) await this.redis.srem(this.key('instances'), ...dead);
    return live.sort((a, b) => a.instanceId.localeCompare(b.instanceId));
  }

  async removeInstance(instanceId: string): Promise<void> {
    await Promise.all([this.redis.del(this.key('instance', instanceId)), this.redis.srem(this.key('instances'), instanceId)]);
  }

  async networkHistogram(network: string): Promise<Record<string, number>> {
    const hash = await this.redis.hgetall(this.key('net', network));
    return Object.fromEntries(Object.entries(hash).map(([bucket, count]) => [bucket, Number(count)]));
  }

  async listNetworks(now: number, limit: number): Promise<{ network: string; histogram: Record<string, number> }[]> {
    await this.redis.zremrangebyscore(this.key('networks'), '-inf', now - NETWORK_RETENTION_MS);
    const networks = await this.redis.zrevrange(this.key('networks'), 0, limit - 1);
    const histograms = await Promise.all(networks.map((n) => this.networkHistogram(n)));
    return networks.map((network, i) => ({ network, histogram: histograms[i] }));
  }

  /** A real write and read, as the readiness probe wants, not only PING. */
  async ping(): Promise<void> {
    const key = this.key('health', String(process.pid));
    const token = String(Math.random());
    const [, got] = await Promise.all([this.redis.set(key, token, 'PX', 10_000), this.redis.get(key)]);
    if (got !== token) throw new Error('Redis read did not return what was written');
  }

  private key(...parts: string[]): string {
    return this.prefix + parts.join(':');
  }

  private userKey(userId: string): string {
    return this.key('user', userId, 'devices');
  }

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
    lastSeenAt: num(h.lastSeenAt),
    appState: h.appState as AppState | undefined,
    network: h.network,
  };
  return view.online ? view : offlineView(view);
}
