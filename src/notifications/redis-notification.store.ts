import type { RedisClient } from '../redis/redis-connection';
import { BoundScript } from '../redis/lua-script';
import { redisCall } from '../redis/redis-errors';
import { NotificationPayload } from '../channel/socket-events';
import { Ack, DUE_BATCH, dueMember, NotificationStore, readTarget, writeFallback } from './notification.store';
import { DEFAULT_EVENT_RETENTION_MS } from '../events/event.types';
import { ACK, ARM, CLAIM_DUE, PENDING, PUBLISH, RECORD_FALLBACK, RENEW } from './notification.scripts';
import {
  Deliverable,
  DueClaim,
  FallbackJob,
  FallbackResult,
  NotificationStatus,
  OnlineTarget,
  PublishAnswer,
  PublishRequest,
  PublishResult,
} from './notification.types';

/** Inboxes and receipts in Redis; the layout is described in notification.scripts.ts. */
export class RedisNotificationStore extends NotificationStore {
  private readonly scripts: {
    publish: BoundScript<typeof PUBLISH>;
    pending: BoundScript<typeof PENDING>;
    ack: BoundScript<typeof ACK>;
    arm: BoundScript<typeof ARM>;
    claimDue: BoundScript<typeof CLAIM_DUE>;
    renew: BoundScript<typeof RENEW>;
    recordFallback: BoundScript<typeof RECORD_FALLBACK>;
  };

  /** `eventRetentionMs`: EVENT_RETENTION_HOURS, for the event log the scripts append to. */
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly eventRetentionMs = DEFAULT_EVENT_RETENTION_MS,
  ) {
    super();
    this.scripts = {
      publish: PUBLISH.bind(redis),
      pending: PENDING.bind(redis),
      ack: ACK.bind(redis),
      arm: ARM.bind(redis),
      claimDue: CLAIM_DUE.bind(redis),
      renew: RENEW.bind(redis),
      recordFallback: RECORD_FALLBACK.bind(redis),
    };
  }

  async publish(r: PublishRequest): Promise<PublishResult> {
    const p = r.payload;
    const reply = (await this.scripts.publish({
      keys: { notif: this.key('notif', p.id), seq: this.key('notif', 'seq'), idempotency: this.key('idem', r.idempotency?.key ?? ''), due: this.dueKey },
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
        ackDeadline: r.ackDeadlineAt,
        fallback: r.fallback,
        leaseMs: r.leaseMs,
        batchSize: DUE_BATCH,
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
        const [, answer, ids, instances, evicted, jobs] = reply;
        return {
          kind: 'accepted',
          answer: JSON.parse(answer) as PublishAnswer,
          online: targets(ids, instances),
          evicted: evicted.length,
          fallback: jobs.map(readJob),
        };
      }
    }
  }

  async pending(deviceId: string, now: number, limit: number): Promise<Deliverable[]> {
    const rows = (await this.scripts.pending({
      keys: { inbox: this.key('inbox', deviceId) },
      args: { prefix: this.prefix, deviceId, now, limit, eventRetention: this.eventRetentionMs },
    })) as string[];
    return rows.map(deliverable);
  }

  async ackMany(acks: readonly Ack[], now: number): Promise<boolean[]> {
    if (!acks.length) return [];
    const changed = (await this.scripts.ack({
      keys: { due: this.dueKey },
      args: { prefix: this.prefix, now, eventRetention: this.eventRetentionMs },
      rest: acks.flatMap((a) => [a.payload.id, a.deviceId, a.payload.collapseKey ?? '']),
    })) as number[];
    return changed.map((c) => c === 1);
  }

  async armAckDeadlines(targets: readonly { id: string; deviceId: string }[], deadline: number, now: number): Promise<void> {
    if (!targets.length) return;
    await this.scripts.arm({ keys: { due: this.dueKey }, args: { deadline, now }, rest: targets.map((t) => dueMember.redelivered(t.id, t.deviceId)) });
  }

  async claimDue(now: number, limit: number, leaseMs: number): Promise<DueClaim> {
    const [claimed, unacked, expired, jobs, more] = (await this.scripts.claimDue({
      keys: { due: this.dueKey },
      args: { prefix: this.prefix, now, limit, leaseMs, eventRetention: this.eventRetentionMs },
    })) as [number, number, number, RawJob[], number];
    return { claimed, unacked, expired, jobs: jobs.map(readJob), more: more === 1 };
  }

  async renewFallback(keys: readonly string[], until: number): Promise<void> {
    if (keys.length) await this.scripts.renew({ keys: { due: this.dueKey }, args: { untilAt: until }, rest: keys });
  }

  async recordFallback(key: string, results: readonly FallbackResult[], done: boolean): Promise<void> {
    const id = key.split('|')[1] ?? '';
    await this.scripts.recordFallback({
      keys: { notif: this.key('notif', id), due: this.dueKey },
      args: { prefix: this.prefix, member: key, done: done ? 1 : 0 },
      rest: results.flatMap((r) => [r.deviceId, writeFallback(r), r.registration ?? '']),
    });
  }

  async status(id: string, now: number): Promise<NotificationStatus | null> {
    const hash = await redisCall(this.redis.hgetall(this.key('notif', id)));
    // Redis forgets by its own clock (PX); forgetAt keeps the rule exact on the caller's clock too.
    if (!hash.payload || Number(hash.forgetAt) <= now) return null;
    const payload = JSON.parse(hash.payload) as NotificationPayload;
    const expiresAt = Number(hash.expiresAt);
    const targets = Object.entries(hash)
      .filter(([field]) => field.startsWith('t:'))
      .map(([field, raw]) => readTarget(field.slice(2), raw, expiresAt, now, hash[`f:${field.slice(2)}`]))
      .sort((a, b) => a.deviceId.localeCompare(b.deviceId));
    return { id, createdAt: payload.createdAt, expiresAt: payload.expiresAt, targets };
  }

  private key(...parts: string[]): string {
    return this.prefix + parts.join(':');
  }

  private get dueKey(): string {
    return this.key('notif', 'due');
  }
}

/** [member, payload JSON or false, deviceId, registration JSON or '', ...] as lease_job returns it. */
type RawJob = [string, string | null, ...string[]];

function readJob([key, json, ...flat]: RawJob): FallbackJob {
  const targets: FallbackJob['targets'] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) targets.push({ deviceId: flat[i]!, ...(flat[i + 1] ? { registration: flat[i + 1] } : {}) });
  return { key, notification: deliverable(json ?? 'null'), trigger: key.endsWith('|u') ? 'unacked' : 'offline', targets };
}

type PublishReply =
  | ['conflict']
  | ['replay', string, string | null, string[], string[]]
  | ['ok', string, string[], string[], string[], RawJob[]];

function targets(deviceIds: string[], instanceIds: string[]): OnlineTarget[] {
  return deviceIds.map((deviceId, i) => ({ deviceId, instanceId: instanceIds[i] ?? '' }));
}

function deliverable(json: string): Deliverable {
  return { payload: JSON.parse(json) as NotificationPayload, bytes: Buffer.byteLength(json) };
}
