import { NotificationPayload } from '../channel/socket-events';
import { MinHeap } from '../common/min-heap';
import { EventType } from '../events/event.types';
import { MemoryPresenceStore } from '../presence/memory-presence.store';
import { Ack, DUE_BATCH, dueMember, NotificationStore, readTarget, writeFallback } from './notification.store';
import {
  Deliverable,
  DueClaim,
  ExpiryReason,
  FallbackJob,
  FallbackPolicy,
  FallbackResult,
  FallbackTrigger,
  NotificationStatus,
  OnlineTarget,
  PublishAnswer,
  PublishRequest,
  PublishResult,
} from './notification.types';

interface Stored {
  payload: NotificationPayload;
  bytes: number;
  expiresAt: number;
  forgetAt: number;
  targets: Map<string, string>;
  /** Targets reported unacked (each once). */
  unacked: Set<string>;
  fallback: FallbackPolicy;
  /** Batches of target device ids, as the due-time index refers to them (1-based). */
  batches: string[][];
  /** Native push outcomes, as writeFallback gives them (the first per target). */
  pushed: Map<string, string>;
  /** Targets written pending (online + queued), and how many of them are delivered since (see ACK's script). */
  written: number;
  delivered: number;
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
 * leave inboxes when their expiry fires from the due-time index (or an inbox read finds them expired) and are forgotten after retention; idempotency records end with
 * their window), popping only due entries off min-heaps, so memory follows live data.
 * `notification.*` events go to the presence store's event log, in the same call as the change.
 */
export class MemoryNotificationStore extends NotificationStore {
  private readonly notifications = new Map<string, Stored>();
  private readonly inboxes = new Map<string, Inbox>();
  private readonly idempotency = new Map<string, { fingerprint: string; answer: PublishAnswer; expiresAt: number }>();
  private readonly forgetting = new MinHeap<Due>((d) => d.at);
  private readonly idempotencyEnds = new MinHeap<Due>((d) => d.at);
  /** The due-time index (see NotificationStore): member -> due time; the heap may hold stale entries, the map decides. */
  private readonly dueAt = new Map<string, number>();
  private readonly dueHeap = new MinHeap<Due>((d) => d.at);

  constructor(private readonly presence: MemoryPresenceStore) {
    super();
  }

  /** Entries held: notifications, inboxes and idempotency records (what tests bound). */
  get footprint(): number {
    return this.notifications.size + this.inboxes.size + this.idempotency.size + this.dueAt.size;
  }

  async publish(r: PublishRequest): Promise<PublishResult> {
    this.prune(r.now);
    if (r.idempotency) {
      const prev = this.idempotency.get(r.idempotency.key);
      if (prev && prev.expiresAt > r.now) {
        if (prev.fingerprint !== r.idempotency.fingerprint) return { kind: 'conflict' };
        const pending = this.stillPending(prev.answer.id, r.now);
        for (const { deviceId } of pending?.online ?? []) this.addDue(dueMember.redelivered(prev.answer.id, deviceId), r.ackDeadlineAt, true);
        return { kind: 'replay', answer: prev.answer, pending };
      }
    }
    const { id, collapseKey } = r.payload;
    const stored: Stored = {
      payload: r.payload,
      bytes: Buffer.byteLength(r.payloadJson),
      expiresAt: r.effectiveExpiresAt,
      forgetAt: r.effectiveExpiresAt + r.retentionMs,
      targets: new Map(),
      unacked: new Set(),
      fallback: r.fallback,
      batches: [],
      pushed: new Map(),
      written: 0,
      delivered: 0,
    };
    this.notifications.set(id, stored);
    this.forgetting.push({ at: stored.forgetAt, key: id });
    const answer: PublishAnswer = { id, online: 0, queued: 0 };
    const online: OnlineTarget[] = [];
    let evicted = 0;
    // Batches for the due-time index, as the Redis script PUBLISH makes them.
    const sent: string[] = [];
    const kept: string[] = [];
    const missed: string[] = [];
    const jobs: FallbackJob[] = [];
    const flush = (batch: string[], kind: 'sent' | 'kept' | 'missed') => {
      if (!batch.length) return;
      stored.batches.push(batch.splice(0));
      const n = stored.batches.length;
      if (kind !== 'missed') this.addDue(dueMember.expiry(id, n), stored.expiresAt);
      if (kind === 'sent') this.addDue(dueMember.ack(id, n), r.ackDeadlineAt);
      if (kind !== 'sent' && r.fallback !== 'none') {
        const job = this.leaseJob(dueMember.push(id, n, 'offline'), r.now, r.leaseMs);
        if (job) jobs.push(job);
      }
    };
    const add = (batch: string[], kind: 'sent' | 'kept' | 'missed', deviceId: string) => {
      batch.push(deviceId);
      if (batch.length >= DUE_BATCH) flush(batch, kind);
    };
    for (const deviceId of r.deviceIds) {
      const instanceId = this.presence.onlineInstance(deviceId, r.now);
      if (!instanceId && !r.keepOffline) {
        stored.targets.set(deviceId, `expired:${r.now}:offline`);
        this.record('notification.expired', r.now, id, deviceId, 'offline');
        if (r.fallback !== 'none') add(missed, 'missed', deviceId);
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
        // One past its ttl was not evicted: it had expired (its index entry records that).
        if ((this.notifications.get(oldest)?.expiresAt ?? 0) <= r.now) continue;
        this.setTarget(oldest, deviceId, `expired:${r.now}:inbox_full`);
        this.record('notification.expired', r.now, oldest, deviceId, 'inbox_full');
        evicted++;
      }
      stored.targets.set(deviceId, `pending:${r.now}`);
      if (instanceId) {
        answer.online++;
        online.push({ deviceId, instanceId });
        add(sent, 'sent', deviceId);
      } else {
        answer.queued++;
        add(kept, 'kept', deviceId);
      }
    }
    flush(sent, 'sent');
    flush(kept, 'kept');
    flush(missed, 'missed');
    stored.written = answer.online + answer.queued;
    if (r.idempotency) {
      const expiresAt = r.now + r.idempotency.windowMs;
      this.idempotency.set(r.idempotency.key, { fingerprint: r.idempotency.fingerprint, answer, expiresAt });
      this.idempotencyEnds.push({ at: expiresAt, key: r.idempotency.key });
    }
    return { kind: 'accepted', answer, online, evicted, fallback: jobs };
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
        this.expireTarget(id, deviceId, now);
      }
    }
    return out;
  }

  async ackMany(acks: readonly Ack[], now: number): Promise<boolean[]> {
    this.prune(now);
    return acks.map((a) => this.ackOne(a, now));
  }

  /** As the Redis store's ACK: see Ack for `userId` and `fromInbox`. */
  private ackOne({ payload, deviceId, userId, fromInbox }: Ack, now: number): boolean {
    this.leaveInbox(deviceId, payload.id, payload.collapseKey);
    if (fromInbox !== false) this.dueAt.delete(dueMember.redelivered(payload.id, deviceId));
    const n = this.notifications.get(payload.id);
    const target = n?.targets.get(deviceId);
    if (!n || !target || target.startsWith('delivered:')) return false;
    this.setTarget(payload.id, deviceId, `delivered:${now}`);
    this.record('notification.delivered', now, payload.id, deviceId, undefined, userId);
    // Every target written pending delivered: its deadlines and expiries have nothing left to do.
    if (!target.endsWith(':offline') && ++n.delivered >= n.written) {
      for (let b = 1; b <= n.batches.length; b++) {
        this.dueAt.delete(dueMember.ack(payload.id, b));
        this.dueAt.delete(dueMember.expiry(payload.id, b));
      }
    }
    return true;
  }

  async armAckDeadlines(targets: readonly { id: string; deviceId: string }[], deadline: number): Promise<void> {
    for (const t of targets) this.addDue(dueMember.redelivered(t.id, t.deviceId), deadline, true);
  }

  /** The same steps, in the same order and with the same bound on work, as the Redis script CLAIM_DUE. */
  async claimDue(now: number, limit: number, leaseMs: number): Promise<DueClaim> {
    this.prune(now);
    const claim: DueClaim = { claimed: 0, unacked: 0, expired: 0, jobs: [], more: false };
    const taken = new Set<string>();
    for (let top = this.dueHeap.peek(); top && top.at <= now && taken.size < limit; top = this.dueHeap.peek()) {
      this.dueHeap.pop();
      if (this.dueAt.get(top.key) === top.at) taken.add(top.key);
    }
    // Ties in the order Redis gives them (score, then member).
    const due = [...taken].sort((a, b) => this.dueAt.get(a)! - this.dueAt.get(b)! || (a < b ? -1 : a > b ? 1 : 0));
    let work = 0;
    for (const member of due) {
      if (work >= limit) {
        // Not worked on: back into the heap, as due as it was.
        this.dueHeap.push({ at: this.dueAt.get(member)!, key: member });
        continue;
      }
      claim.claimed++;
      work++;
      const [kind, id = '', ref = ''] = member.split('|');
      if (kind === 'p') {
        const job = this.leaseJob(member, now, leaseMs);
        if (job) claim.jobs.push(job);
        work += job?.targets.length ?? 0;
        continue;
      }
      this.dueAt.delete(member);
      const n = this.notifications.get(id);
      if (!n) continue;
      const devices = kind === 'r' ? [ref] : (n.batches[Number(ref) - 1] ?? []);
      work += devices.length;
      if (kind === 'x') {
        for (const deviceId of devices) claim.expired += this.expireTarget(id, deviceId, now) ? 1 : 0;
        continue;
      }
      const fresh: string[] = [];
      for (const deviceId of devices) {
        const target = n.targets.get(deviceId);
        // Still waiting for delivery: pending, or expired by its ttl alone.
        if (!target || !/^(pending:|expired:\d+$)/.test(target) || n.unacked.has(deviceId)) continue;
        n.unacked.add(deviceId);
        this.record('notification.unacked', now, id, deviceId);
        claim.unacked++;
        fresh.push(deviceId);
      }
      if (fresh.length && n.fallback === 'unacked') {
        n.batches.push(fresh);
        const job = this.leaseJob(dueMember.push(id, n.batches.length, 'unacked'), now, leaseMs);
        if (job) claim.jobs.push(job);
      }
    }
    claim.more = claim.claimed < due.length || due.length === limit;
    return claim;
  }

  async renewFallback(keys: readonly string[], until: number): Promise<void> {
    for (const key of keys) if (this.dueAt.has(key)) this.addDue(key, until);
  }

  async recordFallback(key: string, results: readonly FallbackResult[], done: boolean): Promise<void> {
    const n = this.notifications.get(key.split('|')[1] ?? '');
    for (const r of results) {
      if (n && !n.pushed.has(r.deviceId)) n.pushed.set(r.deviceId, writeFallback(r));
      if (r.registration && r.status === 'failed' && r.reason === 'gone') this.presence.deletePushRegistration(r.deviceId, r.registration);
    }
    if (done) this.dueAt.delete(key);
  }

  async status(id: string, now: number): Promise<NotificationStatus | null> {
    this.prune(now);
    const n = this.notifications.get(id);
    if (!n) return null;
    const targets = [...n.targets.entries()]
      .map(([deviceId, raw]) => readTarget(deviceId, raw, n.expiresAt, now, n.pushed.get(deviceId)))
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

  /** Sets a due entry (with `onlyNew`, only if the member has none: ZADD NX). */
  private addDue(member: string, at: number, onlyNew = false): void {
    if (onlyNew && this.dueAt.has(member)) return;
    this.dueAt.set(member, at);
    this.dueHeap.push({ at, key: member });
  }

  /** As the Redis lease_job: the targets of push batch `member` without an outcome, leased to the caller; undefined (entry dropped) when none is left. */
  private leaseJob(member: string, now: number, leaseMs: number): FallbackJob | undefined {
    const [, id = '', batch = '', trigger] = member.split('|');
    const n = this.notifications.get(id);
    const targets = (n?.batches[Number(batch) - 1] ?? [])
      .filter((deviceId) => !n?.pushed.has(deviceId))
      .map((deviceId) => {
        const registration = this.presence.pushRegistrationOf(deviceId);
        return { deviceId, ...(registration ? { registration } : {}) };
      });
    if (!n || !targets.length) {
      this.dueAt.delete(member);
      return undefined;
    }
    this.addDue(member, now + leaseMs);
    const t: FallbackTrigger = trigger === 'u' ? 'unacked' : 'offline';
    return { key: member, notification: { payload: n.payload, bytes: n.bytes }, trigger: t, targets };
  }

  /** As the Redis expire_target: out of the inbox; a pending target is recorded expired (ttl) once. Returns whether it was. */
  private expireTarget(id: string, deviceId: string, now: number): boolean {
    this.leaveInbox(deviceId, id);
    const n = this.notifications.get(id);
    if (!n?.targets.get(deviceId)?.startsWith('pending:')) return false;
    n.targets.set(deviceId, `expired:${n.expiresAt}`);
    this.record('notification.expired', now, id, deviceId, 'ttl');
    return true;
  }

  private prune(now: number): void {
    for (let due = this.forgetting.peek(); due && due.at <= now; due = this.forgetting.peek()) {
      this.forgetting.pop();
      // Normally gone from inboxes since its expiry fired; whatever no sweep took out goes now.
      for (const deviceId of this.notifications.get(due.key)?.targets.keys() ?? []) this.leaveInbox(deviceId, due.key);
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

  private record(type: EventType, now: number, notificationId: string, deviceId: string, reason?: ExpiryReason | 'ttl', user?: string): void {
    const userId = user ?? this.presence.userOf(deviceId) ?? null;
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
