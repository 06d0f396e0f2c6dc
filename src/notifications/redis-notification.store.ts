import type { RedisClient } from '../redis/redis-connection';
import { defineScript, Script } from '../redis/define-script';
import { NotificationPayload } from '../gateway/socket-events';
import { NotificationStore, readTarget } from './notification.store';
import { ACK, PENDING, PUBLISH } from './notification.scripts';
import { NotificationStatus, PublishAnswer, PublishRequest, PublishResult } from './notification.types';

/** Inboxes and receipts in Redis; the layout is described in notification.scripts.ts. */
export class RedisNotificationStore extends NotificationStore {
  private readonly publishScript: Script;
  private readonly pendingScript: Script;
  private readonly ackScript: Script;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {
    super();
    this.publishScript = defineScript(this.redis, 'pgPublish', PUBLISH, 3);
    this.pendingScript = defineScript(this.redis, 'pgPending', PENDING, 1);
    this.ackScript = defineScript(this.redis, 'pgAck', ACK, 3);
  }

  async publish(r: PublishRequest): Promise<PublishResult> {
    const p = r.payload;
    const reply = (await this.publishScript(
      this.key('notif', p.id),
      this.key('notif', 'seq'),
      this.key('idem', r.idempotency?.key ?? ''),
      this.prefix,
      p.id,
      JSON.stringify(p),
      p.createdAt,
      r.effectiveExpiresAt,
      Math.max(1, r.effectiveExpiresAt - r.now + r.retentionMs),
      p.collapseKey ?? '',
      r.maxInbox,
      r.keepOffline ? 1 : 0,
      r.now,
      r.idempotency?.fingerprint ?? '',
      r.idempotency?.windowMs ?? 0,
      ...r.deviceIds,
    )) as [string, string?, string[]?, string[]?];
    if (reply[0] === 'conflict') return { kind: 'conflict' };
    const answer = JSON.parse(reply[1]!) as PublishAnswer;
    if (reply[0] === 'replay') return { kind: 'replay', answer };
    return { kind: 'accepted', answer, onlineDeviceIds: reply[2] ?? [], evicted: reply[3]?.length ?? 0 };
  }

  async pending(deviceId: string, now: number, limit: number): Promise<NotificationPayload[]> {
    const rows = (await this.pendingScript(this.key('inbox', deviceId), this.prefix, deviceId, now, limit)) as string[];
    return rows.map((json) => JSON.parse(json) as NotificationPayload);
  }

  async ack(payload: NotificationPayload, deviceId: string, now: number): Promise<boolean> {
    const inbox = this.key('inbox', deviceId);
    const changed = await this.ackScript(inbox, this.key('notif', payload.id), `${inbox}:collapse`, payload.id, deviceId, now, payload.collapseKey ?? '');
    return changed === 1;
  }

  async status(id: string, now: number): Promise<NotificationStatus | null> {
    const hash = await this.redis.hgetall(this.key('notif', id));
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
