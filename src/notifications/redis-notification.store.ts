import type { RedisClient } from '../redis/redis-connection';
import { BoundScript } from '../redis/lua-script';
import { redisCall } from '../redis/redis-errors';
import { NotificationPayload } from '../channel/socket-events';
import { NotificationStore, readTarget } from './notification.store';
import { DEFAULT_EVENT_RETENTION_MS } from '../events/event.types';
import { ACK, PENDING, PUBLISH, UNACKED } from './notification.scripts';
import { Deliverable, NotificationStatus, OnlineTarget, PublishAnswer, PublishRequest, PublishResult } from './notification.types';

/** Inboxes and receipts in Redis; the layout is described in notification.scripts.ts. */
export class RedisNotificationStore extends NotificationStore {
  private readonly scripts: {
    publish: BoundScript<typeof PUBLISH>;
    pending: BoundScript<typeof PENDING>;
    ack: BoundScript<typeof ACK>;
    unacked: BoundScript<typeof UNACKED>;
  };

  /** `eventRetentionMs`: EVENT_RETENTION_HOURS, for the event log the scripts append to. */
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly eventRetentionMs = DEFAULT_EVENT_RETENTION_MS,
  ) {
    super();
    this.scripts = { publish: PUBLISH.bind(redis), pending: PENDING.bind(redis), ack: ACK.bind(redis), unacked: UNACKED.bind(redis) };
  }

  async publish(r: PublishRequest): Promise<PublishResult> {
    const p = r.payload;
    const reply = (await this.scripts.publish({
      keys: { notif: this.key('notif', p.id), seq: this.key('notif', 'seq'), idempotency: this.key('idem', r.idempotency?.key ?? '') },
      args: {
        prefix: this.prefix,
        id: p.id,
        payload: r.payloadJson,
        createdAt: p.createdAt,
        expiresAt: r.effectiveExpiresAt,
        notifPx: Math.max(1, r.effectiveExpiresAt - r.now + r.retentionMs),
        collapseKey: p.collapseKey,
        maxInbox: r.maxInbox,
        keepOffline: r.keepOffline ? 1 : 0,
        now: r.now,
        fingerprint: r.idempotency?.fingerprint,
        idempotencyPx: r.idempotency?.windowMs ?? 0,
        eventRetention: this.eventRetentionMs,
      },
      rest: r.deviceIds,
    })) as PublishReply;
    switch (reply[0]) {
      case 'conflict':
        return { kind: 'conflict' };
      case 'replay': {
        const [, answer, json, ids, instances] = reply;
        const online = targets(ids, instances);
        const notification = json ? deliverable(json) : undefined;
        return { kind: 'replay', answer: JSON.parse(answer) as PublishAnswer, pending: notification && online.length ? { notification, online } : undefined };
      }
      case 'ok': {
        const [, answer, ids, instances, evicted] = reply;
        return { kind: 'accepted', answer: JSON.parse(answer) as PublishAnswer, online: targets(ids, instances), evicted: evicted.length };
      }
    }
  }

  async pending(deviceId: string, now: number, limit: number): Promise<Deliverable[]> {
    const rows = (await this.scripts.pending({
      keys: { inbox: this.key('inbox', deviceId) },
      args: { prefix: this.prefix, deviceId, now, limit },
    })) as string[];
    return rows.map(deliverable);
  }

  async ack(payload: Pick<NotificationPayload, 'id' | 'collapseKey'>, deviceId: string, now: number): Promise<boolean> {
    const inbox = this.key('inbox', deviceId);
    const changed = await this.scripts.ack({
      keys: { inbox, notif: this.key('notif', payload.id), collapseIndex: `${inbox}:collapse` },
      args: { prefix: this.prefix, id: payload.id, deviceId, now, collapseKey: payload.collapseKey, eventRetention: this.eventRetentionMs },
    });
    return changed === 1;
  }

  async unacked(id: string, deviceId: string, now: number): Promise<boolean> {
    const recorded = await this.scripts.unacked({
      keys: { notif: this.key('notif', id) },
      args: { prefix: this.prefix, id, deviceId, now, eventRetention: this.eventRetentionMs },
    });
    return recorded === 1;
  }

  async status(id: string, now: number): Promise<NotificationStatus | null> {
    const hash = await redisCall(this.redis.hgetall(this.key('notif', id)));
    // Redis forgets by its own clock (PX); forgetAt keeps the rule exact on the caller's clock too.
    if (!hash.payload || Number(hash.forgetAt) <= now) return null;
    const payload = JSON.parse(hash.payload) as NotificationPayload;
    const expiresAt = Number(hash.expiresAt);
    const targets = Object.entries(hash)
      .filter(([field]) => field.startsWith('t:'))
      .map(([field, raw]) => readTarget(field.slice(2), raw, expiresAt, now))
      .sort((a, b) => a.deviceId.localeCompare(b.deviceId));
    return { id, createdAt: payload.createdAt, expiresAt: payload.expiresAt, targets };
  }

  private key(...parts: string[]): string {
    return this.prefix + parts.join(':');
  }
}

type PublishReply =
  | ['conflict']
  | ['replay', string, string | null, string[], string[]]
  | ['ok', string, string[], string[], string[]];

function targets(deviceIds: string[], instanceIds: string[]): OnlineTarget[] {
  return deviceIds.map((deviceId, i) => ({ deviceId, instanceId: instanceIds[i] ?? '' }));
}

function deliverable(json: string): Deliverable {
  return { payload: JSON.parse(json) as NotificationPayload, bytes: Buffer.byteLength(json) };
}
