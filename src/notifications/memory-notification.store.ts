import { NotificationPayload } from '../channel/socket-events';
import { MemoryPresenceStore } from '../presence/memory-presence.store';
import { NotificationStore, readTarget } from './notification.store';
import { NotificationStatus, PublishAnswer, PublishRequest, PublishResult } from './notification.types';

interface Stored {
  payload: NotificationPayload;
  expiresAt: number;
  forgetAt: number;
  targets: Map<string, string>;
}

interface Inbox {
  /** notificationId, in publish order (a Map keeps insertion order): oldest first. */
  ids: Set<string>;
  collapse: Map<string, string>;
}

/** The embedded counterpart of RedisNotificationStore, for one instance without Redis. */
export class MemoryNotificationStore extends NotificationStore {
  private readonly notifications = new Map<string, Stored>();
  private readonly inboxes = new Map<string, Inbox>();
  private readonly idempotency = new Map<string, { fingerprint: string; answer: PublishAnswer; expiresAt: number }>();

  constructor(private readonly presence: MemoryPresenceStore) {
    super();
  }

  async publish(r: PublishRequest): Promise<PublishResult> {
    if (r.idempotency) {
      const prev = this.idempotency.get(r.idempotency.key);
      if (prev && prev.expiresAt > r.now) {
        return prev.fingerprint === r.idempotency.fingerprint ? { kind: 'replay', answer: prev.answer } : { kind: 'conflict' };
      }
    }
    const { id, collapseKey } = r.payload;
    const stored: Stored = { payload: r.payload, expiresAt: r.effectiveExpiresAt, forgetAt: r.effectiveExpiresAt + r.retentionMs, targets: new Map() };
    this.notifications.set(id, stored);
    const answer: PublishAnswer = { id, online: 0, queued: 0 };
    const onlineDeviceIds: string[] = [];
    let evicted = 0;
    for (const deviceId of r.deviceIds) {
      const online = this.presence.isOnline(deviceId, r.now);
      if (!online && !r.keepOffline) {
        stored.targets.set(deviceId, `expired:${r.now}:offline`);
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
        evicted++;
      }
      stored.targets.set(deviceId, `pending:${r.now}`);
      if (online) {
        answer.online++;
        onlineDeviceIds.push(deviceId);
      } else {
        answer.queued++;
      }
    }
    if (r.idempotency) {
      this.idempotency.set(r.idempotency.key, { fingerprint: r.idempotency.fingerprint, answer, expiresAt: r.now + r.idempotency.windowMs });
    }
    return { kind: 'accepted', answer, onlineDeviceIds, evicted };
  }

  async pending(deviceId: string, now: number, limit: number): Promise<NotificationPayload[]> {
    const inbox = this.inboxes.get(deviceId);
    if (!inbox) return [];
    const out: NotificationPayload[] = [];
    for (const id of [...inbox.ids].slice(0, limit)) {
      const n = this.notifications.get(id);
      if (n && n.expiresAt > now) {
        out.push(n.payload);
      } else {
        inbox.ids.delete(id);
        if (n) n.targets.set(deviceId, `expired:${now}`);
      }
    }
    return out;
  }

  async ack(payload: NotificationPayload, deviceId: string, now: number): Promise<boolean> {
    const inbox = this.inboxes.get(deviceId);
    inbox?.ids.delete(payload.id);
    if (payload.collapseKey && inbox?.collapse.get(payload.collapseKey) === payload.id) inbox.collapse.delete(payload.collapseKey);
    const target = this.notifications.get(payload.id)?.targets.get(deviceId);
    if (!target || target.startsWith('delivered:')) return false;
    this.setTarget(payload.id, deviceId, `delivered:${now}`);
    return true;
  }

  async status(id: string, now: number): Promise<NotificationStatus | null> {
    const n = this.notifications.get(id);
    if (!n) return null;
    if (n.forgetAt <= now) {
      this.notifications.delete(id);
      return null;
    }
    const targets = [...n.targets.entries()]
      .map(([deviceId, raw]) => readTarget(deviceId, raw, n.expiresAt, now))
      .sort((a, b) => a.deviceId.localeCompare(b.deviceId));
    return { id, createdAt: n.payload.createdAt, expiresAt: n.payload.expiresAt, targets };
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
