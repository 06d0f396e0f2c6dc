import { NotificationPayload } from '../channel/socket-events';
import { MinHeap } from '../common/min-heap';
import { EventType } from '../events/event.types';
import { MemoryPresenceStore } from '../presence/memory-presence.store';
import { NotificationStore, readTarget } from './notification.store';
import { Deliverable, ExpiryReason, NotificationStatus, OnlineTarget, PublishAnswer, PublishRequest, PublishResult } from './notification.types';

interface Stored {
  payload: NotificationPayload;
  bytes: number;
  expiresAt: number;
  forgetAt: number;
  targets: Map<string, string>;
  /** Targets reported unacked (each once). */
  unacked: Set<string>;
}

interface Inbox {
  /** notificationId, in publish order (a Map keeps insertion order): oldest first. */
  ids: Set<string>;
  collapse: Map<string, string>;
}

interface Due {
  at: number;
  key: string;
}

/**
 * The embedded counterpart of RedisNotificationStore, for one instance without Redis. What Redis
 * drops by TTL is dropped here by time too: every call first prunes what fell due (notifications
 * leave inboxes at their expiry and are forgotten after retention; idempotency records end with
 * their window), popping only due entries off min-heaps, so memory follows live data.
 * `notification.*` events go to the presence store's event log, in the same call as the change.
 */
export class MemoryNotificationStore extends NotificationStore {
  private readonly notifications = new Map<string, Stored>();
  private readonly inboxes = new Map<string, Inbox>();
  private readonly idempotency = new Map<string, { fingerprint: string; answer: PublishAnswer; expiresAt: number }>();
  private readonly expiring = new MinHeap<Due>((d) => d.at);
  private readonly forgetting = new MinHeap<Due>((d) => d.at);
  private readonly idempotencyEnds = new MinHeap<Due>((d) => d.at);

  constructor(private readonly presence: MemoryPresenceStore) {
    super();
  }

  /** Entries held: notifications, inboxes and idempotency records (what tests bound). */
  get footprint(): number {
    return this.notifications.size + this.inboxes.size + this.idempotency.size;
  }

  async publish(r: PublishRequest): Promise<PublishResult> {
    this.prune(r.now);
    if (r.idempotency) {
      const prev = this.idempotency.get(r.idempotency.key);
      if (prev && prev.expiresAt > r.now) {
        if (prev.fingerprint !== r.idempotency.fingerprint) return { kind: 'conflict' };
        return { kind: 'replay', answer: prev.answer, pending: this.stillPending(prev.answer.id, r.now) };
      }
    }
    const { id, collapseKey } = r.payload;
    const stored: Stored = { payload: r.payload, bytes: Buffer.byteLength(r.payloadJson), expiresAt: r.effectiveExpiresAt, forgetAt: r.effectiveExpiresAt + r.retentionMs, targets: new Map(), unacked: new Set() };
    this.notifications.set(id, stored);
    this.expiring.push({ at: stored.expiresAt, key: id });
    this.forgetting.push({ at: stored.forgetAt, key: id });
    const answer: PublishAnswer = { id, online: 0, queued: 0 };
    const online: OnlineTarget[] = [];
    let evicted = 0;
    for (const deviceId of r.deviceIds) {
      const instanceId = this.presence.onlineInstance(deviceId, r.now);
      if (!instanceId && !r.keepOffline) {
        stored.targets.set(deviceId, `expired:${r.now}:offline`);
        this.record('notification.expired', r.now, id, deviceId, 'offline');
        continue;
      }
      const inbox = this.inbox(deviceId);
      if (collapseKey) {
        const old = inbox.collapse.get(collapseKey);
        if (old && inbox.ids.delete(old)) this.setTarget(old, deviceId, `replaced:${r.now}`);
        inbox.collapse.set(collapseKey, id);
      }
      inbox.ids.add(id);
      for (const oldest of inbox.ids) {
        if (inbox.ids.size <= r.maxInbox) break;
        inbox.ids.delete(oldest);
        this.setTarget(oldest, deviceId, `expired:${r.now}:inbox_full`);
        this.record('notification.expired', r.now, oldest, deviceId, 'inbox_full');
        evicted++;
      }
      stored.targets.set(deviceId, `pending:${r.now}`);
      if (instanceId) {
        answer.online++;
        online.push({ deviceId, instanceId });
      } else {
        answer.queued++;
      }
    }
    if (r.idempotency) {
      const expiresAt = r.now + r.idempotency.windowMs;
      this.idempotency.set(r.idempotency.key, { fingerprint: r.idempotency.fingerprint, answer, expiresAt });
      this.idempotencyEnds.push({ at: expiresAt, key: r.idempotency.key });
    }
    return { kind: 'accepted', answer, online, evicted };
  }

  async pending(deviceId: string, now: number, limit: number): Promise<Deliverable[]> {
    this.prune(now);
    const inbox = this.inboxes.get(deviceId);
    if (!inbox) return [];
    const out: Deliverable[] = [];
    for (const id of [...inbox.ids].slice(0, limit)) {
      const n = this.notifications.get(id);
      if (n && n.expiresAt > now) {
        out.push({ payload: n.payload, bytes: n.bytes });
      } else {
        inbox.ids.delete(id);
        if (n) n.targets.set(deviceId, `expired:${now}`);
      }
    }
    return out;
  }

  async ack(payload: Pick<NotificationPayload, 'id' | 'collapseKey'>, deviceId: string, now: number): Promise<boolean> {
    this.prune(now);
    this.leaveInbox(deviceId, payload.id, payload.collapseKey);
    const target = this.notifications.get(payload.id)?.targets.get(deviceId);
    if (!target || target.startsWith('delivered:')) return false;
    this.setTarget(payload.id, deviceId, `delivered:${now}`);
    this.record('notification.delivered', now, payload.id, deviceId);
    return true;
  }

  async unacked(id: string, deviceId: string, now: number): Promise<boolean> {
    this.prune(now);
    const n = this.notifications.get(id);
    const target = n?.targets.get(deviceId);
    // Still waiting for delivery: pending, or expired by its ttl alone (as the Redis script UNACKED decides).
    if (!n || !target || !/^(pending:|expired:\d+$)/.test(target) || n.unacked.has(deviceId)) return false;
    n.unacked.add(deviceId);
    this.record('notification.unacked', now, id, deviceId);
    return true;
  }

  async status(id: string, now: number): Promise<NotificationStatus | null> {
    this.prune(now);
    const n = this.notifications.get(id);
    if (!n) return null;
    const targets = [...n.targets.entries()]
      .map(([deviceId, raw]) => readTarget(deviceId, raw, n.expiresAt, now))
      .sort((a, b) => a.deviceId.localeCompare(b.deviceId));
    return { id, createdAt: n.payload.createdAt, expiresAt: n.payload.expiresAt, targets };
  }

  private stillPending(id: string, now: number): { notification: Deliverable; online: OnlineTarget[] } | undefined {
    const n = this.notifications.get(id);
    if (!n || n.expiresAt <= now) return undefined;
    const online: OnlineTarget[] = [];
    for (const [deviceId, raw] of n.targets) {
      const instanceId = raw.startsWith('pending:') ? this.presence.onlineInstance(deviceId, now) : undefined;
      if (instanceId) online.push({ deviceId, instanceId });
    }
    return online.length ? { notification: { payload: n.payload, bytes: n.bytes }, online } : undefined;
  }

  private prune(now: number): void {
    for (let due = this.expiring.peek(); due && due.at <= now; due = this.expiring.peek()) {
      this.expiring.pop();
      for (const deviceId of this.notifications.get(due.key)?.targets.keys() ?? []) this.leaveInbox(deviceId, due.key);
    }
    for (let due = this.forgetting.peek(); due && due.at <= now; due = this.forgetting.peek()) {
      this.forgetting.pop();
      this.notifications.delete(due.key);
    }
    for (let due = this.idempotencyEnds.peek(); due && due.at <= now; due = this.idempotencyEnds.peek()) {
      this.idempotencyEnds.pop();
      if ((this.idempotency.get(due.key)?.expiresAt ?? Infinity) <= now) this.idempotency.delete(due.key);
    }
  }

  /** Takes a notification out of a device's inbox (and its collapse slot); drops an empty inbox. */
  private leaveInbox(deviceId: string, id: string, collapseKey = this.notifications.get(id)?.payload.collapseKey): void {
    const inbox = this.inboxes.get(deviceId);
    if (!inbox) return;
    inbox.ids.delete(id);
    if (collapseKey && inbox.collapse.get(collapseKey) === id) inbox.collapse.delete(collapseKey);
    if (inbox.ids.size === 0 && inbox.collapse.size === 0) this.inboxes.delete(deviceId);
  }

  private record(type: EventType, now: number, notificationId: string, deviceId: string, reason?: ExpiryReason): void {
    const userId = this.presence.userOf(deviceId) ?? null;
    this.presence.events.append(type, now, { notificationId, deviceId, userId, ...(reason ? { reason } : {}) });
  }

  private setTarget(id: string, deviceId: string, raw: string): void {
    this.notifications.get(id)?.targets.set(deviceId, raw);
  }

  private inbox(deviceId: string): Inbox {
    let inbox = this.inboxes.get(deviceId);
    if (!inbox) this.inboxes.set(deviceId, (inbox = { ids: new Set(), collapse: new Map() }));
    return inbox;
  }
}
