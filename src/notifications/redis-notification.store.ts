import type { RedisClient } from '../redis/redis-connection';
import { BoundScript } from '../redis/lua-script';
import { redisCall } from '../redis/redis-errors';
import { NotificationPayload } from '../channel/socket-events';
import { NotificationStore, readTarget } from './notification.store';
import { ACK, PENDING, PUBLISH } from './notification.scripts';
import { NotificationStatus, PublishAnswer, PublishRequest, PublishResult } from './notification.types';

/** Inboxes and receipts in Redis; the layout is described in notification.scripts.ts. */
export class RedisNotificationStore extends NotificationStore {
  private readonly scripts: {
    publish: BoundScript<typeof PUBLISH>;
    pending: BoundScript<typeof PENDING>;
    ack: BoundScript<typeof ACK>;
  };

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {
    super();
    this.scripts = { publish: PUBLISH.bind(redis), pending: PENDING.bind(redis), ack: ACK.bind(redis) };
  }

  async publish(r: PublishRequest): Promise<PublishResult> {
    const p = r.payload;
    const reply = (await this.scripts.publish({
      keys: { notif: this.key('notif', p.id), seq: this.key('notif', 'seq'), idempotency: this.key('idem', r.idempotency?.key ?? '') },
      args: {
        prefix: this.prefix,
        id: p.id,
        payload: JSON.stringify(p),
        createdAt: p.createdAt,
        expiresAt: r.effectiveExpiresAt,
        notifPx: Math.max(1, r.effectiveExpiresAt - r.now + r.retentionMs),
        collapseKey: p.collapseKey,
        maxInbox: r.maxInbox,
        keepOffline: r.keepOffline ? 1 : 0,
        now: r.now,
        fingerprint: r.idempotency?.fingerprint,
        idempotencyPx: r.idempotency?.windowMs ?? 0,
      },
      rest: r.deviceIds,
    })) as [string, string?, string[]?, string[]?];
    if (reply[0] === 'conflict') return { kind: 'conflict' };
    const answer = JSON.parse(reply[1] ?? '{}') as PublishAnswer;
    if (reply[0] === 'replay') return { kind: 'replay', answer };
    return { kind: 'accepted', answer, onlineDeviceIds: reply[2] ?? [], evicted: reply[3]?.length ?? 0 };
  }

  async pending(deviceId: string, now: number, limit: number): Promise<NotificationPayload[]> {
    const rows = (await this.scripts.pending({
      keys: { inbox: this.key('inbox', deviceId) },
      args: { prefix: this.prefix, deviceId, now, limit },
    })) as string[];
    return rows.map((json) => JSON.parse(json) as NotificationPayload);
  }

  async ack(payload: NotificationPayload, deviceId: string, now: number): Promise<boolean> {
    const inbox = this.key('inbox', deviceId);
    const changed = await this.scripts.ack({
      keys: { inbox, notif: this.key('notif', payload.id), collapseIndex: `${inbox}:collapse` },
      args: { id: payload.id, deviceId, now, collapseKey: payload.collapseKey },
    });
    return changed === 1;
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
