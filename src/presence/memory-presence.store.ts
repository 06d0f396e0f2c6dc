import { MinHeap } from '../common/min-heap';
import { DEFAULT_EVENT_RETENTION_MS, HELD_OFFLINE_REASONS, OfflineReason } from '../events/event.types';
import { MemoryEventLog } from '../events/memory-event-log';
import { DEVICE_SAMPLE_PERIOD_MS, NETWORK_RETENTION_MS } from './network-intervals';
import { LiveInstances, PresenceStore } from './presence.store';
import { DeviceView, HeartbeatUpdate, InstanceView, offlineView, SessionRef, SessionStart } from './presence.types';

interface Deadline {
  /** When the sweep looks at it: the session's expiry, or later for a late owner's session (its grace). */
  at: number;
  expiresAt: number;
  deviceId: string;
  sessionId: string;
}

interface NetworkSamples {
  histogram: Record<string, number>;
  lastAt: number;
  /** deviceId -> when it cast its vote and in which bucket, oldest first (pruned by DEVICE_SAMPLE_PERIOD_MS). */
  sampledBy: Map<string, { at: number; bucket: number }>;
}

interface Due {
  at: number;
  key: string;
}

/** A device.offline held by the event grace (as `heldoff:<deviceId>` in Redis). */
interface HeldOffline {
  userId: string;
  due: number;
  /** When the session ended: the event's timestamp once recorded. */
  at: number;
  data: Record<string, unknown>;
}

/**
 * The embedded store for one instance without Redis. Expiries sit in a heap with lazy deletion:
 * a heartbeat pushes a new deadline and the stale one is skipped when it surfaces, so a sweep pops
 * only deadlines that have passed and never walks the healthy devices. What Redis forgets by TTL
 * (offline devices after DEVICE_RETENTION, networks after 7 days, dead instances) is forgotten
 * here by time too, on the same kind of heap, whenever a session starts or a sweep runs.
 */
export class MemoryPresenceStore extends PresenceStore {
  private readonly devices = new Map<string, DeviceView>();
  /** userId -> deviceId -> lastSeenAt (Infinity while online). */
  private readonly users = new Map<string, Map<string, number>>();
  /** Deadlines of every session (one partition), whatever instance holds it. */
  private readonly deadlines = new MinHeap<Deadline>((d) => d.at);
  private readonly instances = new Map<string, InstanceView & { expiresAt: number; delay: number }>();
  private sessions = 0;
  private readonly networks = new Map<string, NetworkSamples>();
  private readonly forgetting = new MinHeap<Due>((d) => d.at);
  private readonly networksForgetting = new MinHeap<Due>((d) => d.at);
  /** deviceId -> its native push registration (JSON), kept as long as the device is known. */
  private readonly pushRegistrations = new Map<string, string>();
  /** deviceId -> its held offline; the heap orders them by due time (stale entries skipped). */
  private readonly held = new Map<string, HeldOffline>();
  private readonly heldDue = new MinHeap<Due>((d) => d.at);
  /** userId -> its devices whose offline is held. */
  private readonly heldByUser = new Map<string, Set<string>>();
  /**
   * deviceId -> the seq of its last recorded event, what views show (a device's own `seq` counts
   * every presence change, recorded or held or suppressed), as `eventSeq` in Redis.
   */
  private readonly recordedSeq = new Map<string, number>();

  /**
   * `events`: the event log this store appends to (GET /v1/events reads it). `eventGraceMs`:
   * PRESENCE_EVENT_GRACE_MS (0, the default here: every offline recorded at once).
   */
  constructor(
    private readonly retentionMs: number,
    readonly events = new MemoryEventLog(DEFAULT_EVENT_RETENTION_MS),
    private readonly eventGraceMs = 0,
  ) {
    super();
  }

  /** Entries held for devices, users, networks, instances and events (what tests bound). */
  get footprint(): number {
    let sampledBy = 0;
    for (const net of this.networks.values()) sampledBy += net.sampledBy.size;
    return this.devices.size + this.users.size + this.networks.size + this.instances.size + sampledBy + this.events.size + this.held.size + this.recordedSeq.size;
  }

  /** The same events, in the same order, as the Redis script CONNECT records. */
  async connect(s: SessionStart): Promise<SessionRef | null> {
    this.prune(s.now);
    const prev = this.devices.get(s.deviceId);
    const replaced = prev?.sessionId ? this.refOf(prev) : null;
    const again = replaced?.sessionId === s.sessionId;
    let seq = prev?.seq ?? 0;
    // A flap: the same user back within the grace of a held (or run-out) offline records neither.
    let flap = false;
    const held = this.takeHeld(s.deviceId);
    if (held) {
      if (held.userId === s.userId && held.due > s.now) flap = true;
      else this.recordHeld(held, s.now);
    }
    if (prev && replaced && !again) {
      const live = (prev.expiresAt ?? 0) > s.now;
      const alive = replaced.instanceId === s.instanceId || this.instanceAlive(replaced.instanceId, s.now);
      const reason: OfflineReason = live ? 'replaced' : alive ? 'heartbeat_timeout' : 'instance_lost';
      const lastSeenAt = live ? s.now : (prev.lastHeartbeatAt ?? s.now);
      const endedAt = live ? s.now : (prev.expiresAt ?? s.now);
      const data = { ...replaced, reason, lastSeenAt, seq: ++seq };
      if (!live && this.eventGraceMs > 0 && prev.userId === s.userId && endedAt + this.eventGraceMs > s.now) {
        flap = true;
      } else {
        this.recordDevice('device.offline', s.now, data);
        if (!live) {
          // Run out unswept: the user's index still counts it online.
          this.users.get(prev.userId)?.set(s.deviceId, lastSeenAt);
          if (prev.userId === s.userId && !this.announced(s.userId)) this.events.append('user.offline', s.now, { userId: s.userId });
        }
      }
    }
    if (prev && prev.userId !== s.userId) {
      this.users.get(prev.userId)?.delete(s.deviceId);
      if (replaced && !this.announced(prev.userId)) this.events.append('user.offline', s.now, { userId: prev.userId });
    }
    const firstOfUser = !this.announced(s.userId);
    const expiresAt = s.now + s.ttl;
    if (!replaced) this.sessions++;
    this.devices.set(s.deviceId, {
      deviceId: s.deviceId,
      userId: s.userId,
      online: true,
      platform: s.platform,
      instanceId: s.instanceId,
      sessionId: s.sessionId,
      connectedAt: s.now,
      lastHeartbeatAt: s.now,
      expiresAt,
      interval: s.interval,
      lastSeenAt: s.now,
      network: s.network,
      seq: again ? seq : seq + 1,
    });
    this.userIndex(s.userId).set(s.deviceId, Infinity);
    this.deadlines.push({ at: expiresAt, expiresAt, deviceId: s.deviceId, sessionId: s.sessionId });
    if (!again && !flap) {
      const { deviceId, userId, sessionId, instanceId, platform, network } = s;
      this.recordDevice('device.online', s.now, { deviceId, userId, sessionId, instanceId, platform, network, seq: seq + 1 });
      if (firstOfUser) this.events.append('user.online', s.now, { userId });
    }
    return replaced;
  }

  async heartbeat(u: HeartbeatUpdate): Promise<boolean> {
    const d = this.devices.get(u.deviceId);
    if (!d || d.sessionId !== u.sessionId || (d.expiresAt ?? 0) <= u.now - (u.grace ?? 0)) return false;
    d.lastHeartbeatAt = u.now;
    d.lastSeenAt = u.now;
    d.interval = u.interval;
    d.expiresAt = u.now + u.ttl;
    if (u.appState) d.appState = u.appState;
    if (u.network) d.network = u.network;
    if (u.network && u.sampleBucket !== undefined) this.addSample(u.network, u.deviceId, u.sampleBucket, u.now);
    this.deadlines.push({ at: d.expiresAt, expiresAt: d.expiresAt, deviceId: u.deviceId, sessionId: u.sessionId });
    return true;
  }

  async disconnect(sessions: readonly SessionRef[], now: number, reason: OfflineReason): Promise<number> {
    let ended = 0;
    for (const s of sessions) {
      const d = this.devices.get(s.deviceId);
      if (d?.sessionId !== s.sessionId) continue;
      this.endSession(d, now, now, reason, now);
      ended++;
    }
    return ended;
  }

  get partitions(): number {
    return 1;
  }

  partitionOf(): number {
    return 0;
  }

  async claimExpired(_partition: number, now: number, limit: number, live: LiveInstances): Promise<SessionRef[]> {
    this.prune(now);
    const claimed: SessionRef[] = [];
    while (claimed.length < limit) {
      const top = this.deadlines.peek();
      if (!top || top.at > now) break;
      this.deadlines.pop();
      // Stale deadline: the session was refreshed, replaced or ended since it was pushed.
      if (!this.isCurrent(top)) continue;
      const d = this.devices.get(top.deviceId)!;
      const grace = live.get(d.instanceId!);
      if (top.expiresAt > now - (grace ?? 0)) {
        // A live owner may still handle a late heartbeat: looked at again once past its grace.
        this.deadlines.push({ ...top, at: top.expiresAt + (grace ?? 0) });
        continue;
      }
      claimed.push(this.refOf(d));
      this.endSession(d, d.lastHeartbeatAt ?? now, now, grace === undefined ? 'instance_lost' : 'heartbeat_timeout', top.expiresAt);
    }
    return claimed;
  }

  async releaseHeldOfflines(_partition: number, now: number, limit: number): Promise<number> {
    let released = 0;
    for (let due = this.heldDue.peek(); due && due.at <= now && released < limit; due = this.heldDue.peek()) {
      this.heldDue.pop();
      // Stale: taken by a reconnect since (and maybe held again, with another due time).
      if (this.held.get(due.key)?.due !== due.at) continue;
      this.recordHeld(this.takeHeld(due.key)!, now);
      released++;
    }
    return released;
  }

  /** Whether the instance still reports itself alive (as its key with a TTL in Redis). */
  private instanceAlive(instanceId: string, now: number): boolean {
    return (this.instances.get(instanceId)?.expiresAt ?? 0) > now;
  }

  async getDevices(deviceIds: readonly string[], now: number): Promise<(DeviceView | null)[]> {
    return deviceIds.map((id) => this.view(id, now));
  }

  async listUserDevices(userId: string, now: number): Promise<DeviceView[]> {
    const index = this.users.get(userId);
    if (!index) return [];
    const views: DeviceView[] = [];
    for (const deviceId of index.keys()) {
      const view = this.view(deviceId, now);
      if (view) views.push(view);
      else index.delete(deviceId);
    }
    if (index.size === 0) this.users.delete(userId);
    return views;
  }

  async userDeviceIds(userId: string, now: number): Promise<string[]> {
    return (await this.listUserDevices(userId, now)).map((d) => d.deviceId);
  }

  async countOnline(now: number): Promise<number> {
    // Sessions not yet ended, less those whose deadline has passed but that no sweep claimed yet.
    let expired = 0;
    this.deadlines.forEachUpTo(now, (e) => {
      if (this.isCurrent(e)) expired++;
    });
    return this.sessions - expired;
  }

  async touchInstance(instance: InstanceView, ttlMs: number, delay = 0): Promise<void> {
    this.instances.set(instance.instanceId, { ...instance, expiresAt: instance.lastSeenAt + ttlMs, delay });
  }

  async liveInstances(now: number): Promise<LiveInstances> {
    await this.listInstances(now);
    return new Map([...this.instances.values()].map((i) => [i.instanceId, i.delay]));
  }

  async listInstances(now: number): Promise<InstanceView[]> {
    for (const [id, i] of this.instances) if (i.expiresAt <= now) this.instances.delete(id);
    return [...this.instances.values()]
      .map(({ instanceId, online, lastSeenAt }) => ({ instanceId, online, lastSeenAt }))
      .sort((a, b) => a.instanceId.localeCompare(b.instanceId));
  }

  async removeInstance(instanceId: string): Promise<void> {
    this.instances.delete(instanceId);
  }

  async ping(): Promise<void> {}

  async networkHistogram(network: string, now: number): Promise<Record<string, number>> {
    const net = this.networks.get(network);
    return net && net.lastAt + NETWORK_RETENTION_MS > now ? { ...net.histogram } : {};
  }

  async listNetworks(now: number, limit: number): Promise<{ network: string; histogram: Record<string, number> }[]> {
    return [...this.networks.entries()]
      .filter(([, n]) => n.lastAt + NETWORK_RETENTION_MS > now)
      .sort(([, a], [, b]) => b.lastAt - a.lastAt)
      .slice(0, limit)
      .map(([network, n]) => ({ network, histogram: { ...n.histogram } }));
  }

  /**
   * For the in-process notification store, which decides who is online the way Redis does: the
   * instance holding the device's session, or undefined when it is offline.
   */
  onlineInstance(deviceId: string, now: number): string | undefined {
    const d = this.devices.get(deviceId);
    return d?.sessionId && (d.expiresAt ?? 0) > now ? d.instanceId : undefined;
  }

  /** Stores the device's push registration (JSON, `provider` inside); false for a device not known. */
  setPushRegistration(deviceId: string, registration: string, now: number): boolean {
    this.prune(now);
    if (!this.devices.has(deviceId)) return false;
    this.pushRegistrations.set(deviceId, registration);
    return true;
  }

  pushRegistrationOf(deviceId: string): string | undefined {
    return this.pushRegistrations.get(deviceId);
  }

  /** Deletes the registration; with `ifEquals`, only if it is still that one. */
  deletePushRegistration(deviceId: string, ifEquals?: string): void {
    if (ifEquals === undefined || this.pushRegistrations.get(deviceId) === ifEquals) this.pushRegistrations.delete(deviceId);
  }

  /** The user of a known device (for the notification events the in-process notification store records). */
  userOf(deviceId: string): string | undefined {
    return this.devices.get(deviceId)?.userId;
  }

  private view(deviceId: string, now: number): DeviceView | null {
    const d = this.devices.get(deviceId);
    if (!d) return null;
    const online = !!d.sessionId && (d.expiresAt ?? 0) > now;
    // Forgotten by the caller's clock even before a prune removed it.
    if (!online && (d.lastSeenAt ?? 0) + this.retentionMs <= now) return null;
    const registration = this.pushRegistrations.get(deviceId);
    const push = registration ? { provider: (JSON.parse(registration) as { provider: string }).provider } : undefined;
    const shown = { ...d, online, seq: this.recordedSeq.get(deviceId) ?? 0, push };
    return online ? shown : offlineView(shown);
  }

  private prune(now: number): void {
    this.events.prune(now);
    for (let due = this.forgetting.peek(); due && due.at <= now; due = this.forgetting.peek()) {
      this.forgetting.pop();
      const d = this.devices.get(due.key);
      if (!d || d.sessionId || (d.lastSeenAt ?? 0) + this.retentionMs > now) continue;
      this.devices.delete(due.key);
      this.pushRegistrations.delete(due.key);
      this.recordedSeq.delete(due.key);
      const index = this.users.get(d.userId);
      index?.delete(due.key);
      if (index?.size === 0) this.users.delete(d.userId);
    }
    for (let due = this.networksForgetting.peek(); due && due.at <= now; due = this.networksForgetting.peek()) {
      this.networksForgetting.pop();
      const net = this.networks.get(due.key);
      if (!net) continue;
      // Sampled since: one entry per network stays in the heap, moved to its new date.
      if (net.lastAt + NETWORK_RETENTION_MS > now) this.networksForgetting.push({ at: net.lastAt + NETWORK_RETENTION_MS, key: due.key });
      else this.networks.delete(due.key);
    }
  }

  /** At most one sample per device and network per DEVICE_SAMPLE_PERIOD_MS (as the Redis script). */
  private addSample(network: string, deviceId: string, bucket: number, now: number): void {
    let net = this.networks.get(network);
    if (!net) {
      this.networks.set(network, (net = { histogram: {}, lastAt: now, sampledBy: new Map() }));
      this.networksForgetting.push({ at: now + NETWORK_RETENTION_MS, key: network });
    }
    // Entries are appended in time order, so the expired ones are at the front.
    for (const [device, vote] of net.sampledBy) {
      if (vote.at + DEVICE_SAMPLE_PERIOD_MS > now) break;
      net.sampledBy.delete(device);
    }
    // One vote per device and period; a longer interval held later in the period moves it up.
    const vote = net.sampledBy.get(deviceId);
    if (vote && bucket <= vote.bucket) return;
    if (vote) {
      const left = (net.histogram[vote.bucket] ?? 1) - 1;
      if (left > 0) net.histogram[vote.bucket] = left;
      else delete net.histogram[vote.bucket];
      vote.bucket = bucket;
    } else {
      net.sampledBy.set(deviceId, { at: now, bucket });
    }
    net.histogram[bucket] = (net.histogram[bucket] ?? 0) + 1;
    net.lastAt = now;
  }

  private isCurrent(e: Deadline): boolean {
    const d = this.devices.get(e.deviceId);
    return !!d && d.sessionId === e.sessionId && d.expiresAt === e.expiresAt;
  }

  /** `endedAt`: when presence ended (now, or the expiry of a run-out session): the grace counts from it. */
  private endSession(d: DeviceView, lastSeenAt: number, now: number, reason: OfflineReason, endedAt: number): void {
    const { deviceId, userId, sessionId, instanceId } = this.refOf(d);
    this.sessions--;
    d.sessionId = d.instanceId = d.connectedAt = d.expiresAt = undefined;
    d.online = false;
    d.lastSeenAt = lastSeenAt;
    d.seq++;
    const data = { deviceId, userId, sessionId, instanceId, reason, lastSeenAt, seq: d.seq };
    this.userIndex(d.userId).set(d.deviceId, lastSeenAt);
    if (this.eventGraceMs > 0 && HELD_OFFLINE_REASONS.includes(reason) && endedAt + this.eventGraceMs > now) {
      this.hold({ userId, due: endedAt + this.eventGraceMs, at: now, data });
    } else {
      this.recordDevice('device.offline', now, data);
      if (!this.announced(userId)) this.events.append('user.offline', now, { userId });
    }
    this.forgetting.push({ at: lastSeenAt + this.retentionMs, key: d.deviceId });
  }

  private recordDevice(type: 'device.online' | 'device.offline', now: number, data: Record<string, unknown>, timestamp = now): void {
    this.events.append(type, now, data, timestamp);
    if (this.devices.has(data.deviceId as string)) this.recordedSeq.set(data.deviceId as string, data.seq as number);
  }

  /** Whether receivers last heard the user as online: a device online, or one whose offline is held. */
  private announced(userId: string): boolean {
    return hasOnline(this.users.get(userId)) || (this.heldByUser.get(userId)?.size ?? 0) > 0;
  }

  private hold(h: HeldOffline): void {
    const deviceId = h.data.deviceId as string;
    this.held.set(deviceId, h);
    this.heldDue.push({ at: h.due, key: deviceId });
    let devices = this.heldByUser.get(h.userId);
    if (!devices) this.heldByUser.set(h.userId, (devices = new Set()));
    devices.add(deviceId);
  }

  private takeHeld(deviceId: string): HeldOffline | undefined {
    const h = this.held.get(deviceId);
    if (!h) return undefined;
    this.held.delete(deviceId);
    const devices = this.heldByUser.get(h.userId);
    devices?.delete(deviceId);
    if (devices?.size === 0) this.heldByUser.delete(h.userId);
    return h;
  }

  /** Records a taken held offline with its original data and time, and user.offline if it was the user's last. */
  private recordHeld(h: HeldOffline, now: number): void {
    this.recordDevice('device.offline', now, h.data, h.at);
    if (!this.announced(h.userId)) this.events.append('user.offline', now, { userId: h.userId }, h.at);
  }

  private userIndex(userId: string): Map<string, number> {
    let index = this.users.get(userId);
    if (!index) this.users.set(userId, (index = new Map<string, number>()));
    return index;
  }

  private refOf(d: DeviceView): SessionRef {
    return { deviceId: d.deviceId, sessionId: d.sessionId!, userId: d.userId, instanceId: d.instanceId! };
  }
}

/** Whether a user index (deviceId -> lastSeenAt, Infinity while online) holds an online device. */
function hasOnline(index: Map<string, number> | undefined): boolean {
  if (index) for (const seen of index.values()) if (seen === Infinity) return true;
  return false;
}
