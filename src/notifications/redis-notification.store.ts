import type { RedisClient } from '../redis/redis-connection';
import { BoundScript } from '../redis/lua-script';
import { redisCall } from '../redis/redis-errors';
import type { DueIndex } from '../redis/due-partitions';
import { KeyLayout } from '../redis/partitions';
import { StoreUnavailableError } from '../common/store-unavailable.error';
import { AdmissionRefused } from '../auth/rate-limiter';
import { NotificationPayload } from '../channel/socket-events';
import { Ack, DUE_BATCH, dueMember, NotificationStore, readTarget, writeFallback } from './notification.store';
import { DEFAULT_EVENT_RETENTION_MS } from '../events/event.types';
import { ACK, ADMIT_PUBLISH_PART, ARM, CLAIM_DUE, IDEM_BEGIN, IDEM_COMMIT, PENDING, PUBLISH_PART, RECORD_FALLBACK, RENEW, REPLAY_PART } from './notification.scripts';
import { headerPartitionOf } from './notification-id';
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

/**
 * Targets per PUBLISH_PART call when a publish spans several partitions: parts run in parallel on
 * the masters, and one call of ~1000 targets holds its master ~30 ms. With one partition there is
 * nothing to run in parallel, so a publish stays one call, as before partitioning.
 */
export const PART_CHUNK = 1_000;
/**
 * A publish streamed to `onDurable` writes this many targets first, alone, and the rest once they
 * are durable (see writeParts): about 2 ms of Redis time before the first devices are sent to.
 */
export const FIRST_WAVE = 200;

/** One PUBLISH_PART call: a partition and (a chunk of) its targets. */
interface PartCall {
  p: number;
  deviceIds: string[];
  /** Whether this call records the header's `parts` (the call in h, without an Idempotency-Key). */
  header: boolean;
}

/**
 * Inboxes and receipts in Redis, partitioned (docs/design/sharding.md section 4); the layout is
 * described in notification.scripts.ts. A device's inbox, its part of each notification, its
 * deadlines and its events are all in the device's partition; a notification's header is in the
 * partition its id names.
 */
export class RedisNotificationStore extends NotificationStore {
  private readonly scripts: {
    publishPart: BoundScript<typeof PUBLISH_PART>;
    admitPublishPart: BoundScript<typeof ADMIT_PUBLISH_PART>;
    idemBegin: BoundScript<typeof IDEM_BEGIN>;
    idemCommit: BoundScript<typeof IDEM_COMMIT>;
    replayPart: BoundScript<typeof REPLAY_PART>;
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
    private readonly keys: KeyLayout,
    private readonly eventRetentionMs = DEFAULT_EVENT_RETENTION_MS,
  ) {
    super();
    this.scripts = {
      publishPart: PUBLISH_PART.bind(redis),
      admitPublishPart: ADMIT_PUBLISH_PART.bind(redis),
      idemBegin: IDEM_BEGIN.bind(redis),
      idemCommit: IDEM_COMMIT.bind(redis),
      replayPart: REPLAY_PART.bind(redis),
      pending: PENDING.bind(redis),
      ack: ACK.bind(redis),
      arm: ARM.bind(redis),
      claimDue: CLAIM_DUE.bind(redis),
      renew: RENEW.bind(redis),
      recordFallback: RECORD_FALLBACK.bind(redis),
    };
  }

  /**
   * Without an Idempotency-Key: every part at once, the one in h recording the header (one call
   * when all targets share a partition). With one, when every target is in h (always with one
   * partition): one call that checks, writes and answers, as before partitions. Otherwise
   * IDEM_BEGIN in h, then the parts, then IDEM_COMMIT; a retry after a partial failure writes the
   * parts again under the first attempt's id (each target once) and commits; a retry after an
   * answer replays each part.
   * 202 only once every call answered: a failed part fails the publish (outcome unknown, since
   * other parts may have been written). Without a key, the online targets go to `onDurable` as
   * their part is durable: the first FIRST_WAVE targets first, then the rest (writeParts).
   */
  async publish(r: PublishRequest): Promise<PublishResult> {
    const h = headerPartitionOf(this.keys, r.payload.id);
    if (r.users) {
      // One partition: the users' devices, the devices named and the header, all in one call.
      if (this.keys.sharded || r.idempotency) throw new Error('users fold only into a publish on one partition without an Idempotency-Key (see foldsUsers)');
      const call = { p: h, deviceIds: [...r.deviceIds], header: true };
      const reply = await this.writePart(r, call, [h]);
      if (reply[0] === 'unfolded') return { kind: 'unfolded' };
      return this.accepted(r, [call], [reply as OkReply]);
    }
    const byPartition = this.keys.byPartition(r.deviceIds, (d) => d);
    if (!r.idempotency) {
      const calls = this.chunk(byPartition, h, r.onDurable ? FIRST_WAVE : PART_CHUNK);
      if (!calls.some((c) => c.p === h)) calls.unshift({ p: h, deviceIds: [], header: true });
      if (r.admit && calls.length !== 1) throw new Error('a rate-limit admission folds only into a publish of one call (see foldsAdmission)');
      return this.writeParts(r, calls, [...byPartition.keys()], r.onDurable);
    }
    if (r.admit) throw new Error('a rate-limit admission does not fold into a publish with an Idempotency-Key');
    const idem = r.idempotency;
    if (this.keys.partitionOf(idem.key) !== h) throw new Error('a notification published with an Idempotency-Key must have its header in the key\'s partition');
    const prefix = this.keys.at(h);
    const idempotencyKey = `${prefix}idem:${idem.key}`;
    const parts = [...byPartition.keys()];
    if (parts.every((p) => p === h)) {
      const reply = await this.writePart(r, { p: h, deviceIds: byPartition.get(h) ?? [], header: true }, parts, idem);
      switch (reply[0]) {
        case 'ok':
          return this.accepted(r, [{ p: h, deviceIds: [], header: true }], [reply]);
        case 'conflict':
          return { kind: 'conflict' };
        case 'replay': {
          const [, answer, json, sendTo] = reply;
          const online = onlineTargets(sendTo);
          return { kind: 'replay', answer: JSON.parse(answer) as PublishAnswer, pending: json && online.length ? { notification: deliverable(json), online } : undefined };
        }
        case 'replay_parts':
          return this.replay(r, reply[1], reply[2], partList(reply[3]));
        case 'resume':
          return this.resume(r, idempotencyKey, byPartition, reply);
        case 'unfolded':
          throw new Error('a publish with an Idempotency-Key names no users to look up in its write');
      }
    }
    const begin = (await this.scripts.idemBegin({
      keys: { idempotency: idempotencyKey, notif: `${prefix}notif:${r.payload.id}` },
      args: {
        prefix,
        fingerprint: idem.fingerprint,
        id: r.payload.id,
        createdAt: String(r.payload.createdAt),
        payload: r.payloadJson,
        expiresAt: r.effectiveExpiresAt,
        forgetAt: forgetAt(r),
        parts: parts.join(','),
        windowMs: idem.windowMs,
        now: r.now,
      },
    })) as BeginReply;
    switch (begin[0]) {
      case 'conflict':
        return { kind: 'conflict' };
      case 'replay':
        return this.replay(r, begin[1], begin[2], begin[3] ? partList(begin[3]) : [h]);
      case 'fresh':
        return this.commit(idempotencyKey, await this.writeParts(r, this.chunk(byPartition, -1), parts));
      case 'resume':
        return this.resume(r, idempotencyKey, byPartition, begin);
    }
  }

  /** One partition (one Redis) and at most one first wave of targets: the publish is one PUBLISH_PART call. */
  override foldsAdmission(targets: number): boolean {
    return !this.keys.sharded && targets <= FIRST_WAVE;
  }

  /**
   * One partition (one Redis): the users' device lists are beside the write (PUBLISH_PART's
   * `users`), up to one first wave of targets in all (one call, as a folded admission needs).
   */
  override foldsUsers(deviceIds: number): number {
    return !this.keys.sharded && deviceIds < FIRST_WAVE ? FIRST_WAVE : 0;
  }

  /** Writes the parts of a publish begun earlier under this key, under its id and createdAt, and commits. */
  private async resume(r: PublishRequest, idempotencyKey: string, byPartition: Map<number, string[]>, [, id, createdAt, stored]: ResumeReply): Promise<PublishResult> {
    const storedParts = partList(stored);
    const again = resumed(r, id, Number(createdAt));
    // The stored partitions only (the first attempt's header lists them), each asked even when
    // no target of this request is there any more, for its totals.
    const calls = this.chunk(new Map(storedParts.map((p) => [p, byPartition.get(p) ?? []])), -1);
    const result = await this.writeParts(again, calls, storedParts);
    return this.commit(idempotencyKey, { ...result, notification: deliverable(again.payloadJson) });
  }

  /**
   * The targets grouped into calls: per partition, in chunks of PART_CHUNK (a script of 1000
   * inbox writes takes Redis some 10 ms; other clients never wait longer behind one), the very
   * first chunk of at most `first` and each next one at most twice the one before: a fan-out
   * streamed to `onDurable` sends each call's devices as it is answered, and a small call
   * answered while the one before is being sent keeps the sending from waiting on Redis.
   */
  private chunk(byPartition: Map<number, string[]>, h: number, first = PART_CHUNK): PartCall[] {
    const calls: PartCall[] = [];
    let size = first;
    for (const [p, ids] of byPartition) {
      const sorted = byPartition.size > 1 ? [...ids].sort() : ids;
      let i = 0;
      do {
        if (calls.length > 0) size = Math.min(PART_CHUNK, size * 2);
        calls.push({ p, deviceIds: i === 0 && sorted.length <= size ? sorted : sorted.slice(i, i + size), header: p === h && i === 0 });
        i += size;
      } while (i < sorted.length);
    }
    return calls;
  }

  /**
   * Runs the part calls (each writes its targets, nothing else: no Idempotency-Key in them), all
   * together; or, with `onDurable`, in two waves: the calls holding the first FIRST_WAVE targets,
   * then, once they are answered, all the others together, the online targets of each call handed
   * to `onDurable` as soon as that call is answered (not in the result). The first wave alone is
   * small, so the first devices wait for about 2 ms of Redis time; the second is written while
   * the first is being sent, and Redis answers its calls one by one as it runs them (a long
   * pipeline is read and run in pieces), so each call's devices are being sent while Redis runs
   * the next. Handing the second wave over only once all of it was answered left the sending
   * idle for the whole wave's Redis time: measured, 10k devices took 26 ms before the first of
   * the second wave was sent, then the rest every 25-30 ms as the sending allowed. (Sending each
   * wave only once the one before was answered would interleave the first devices' acks with the
   * later sends: measured slower to the last device.) A failed first wave ends the publish; the
   * others are not sent.
   */
  private async writeParts(r: PublishRequest, calls: PartCall[], parts: number[], onDurable?: (online: OnlineTarget[]) => void): Promise<PublishResult & { kind: 'accepted' }> {
    let settled: PromiseSettledResult<PartReply>[];
    if (!onDurable) {
      settled = await Promise.allSettled(calls.map((c) => this.writePart(r, c, parts)));
    } else {
      settled = [];
      const [first, rest] = waves(calls);
      const handOver = (reply: PartReply) => {
        const online = onlineTargets((reply as OkReply)[3]);
        if (online.length) onDurable(online);
      };
      const answers = await Promise.allSettled(first.map((c) => this.writePart(r, c, parts)));
      const failed = answers.find((a): a is PromiseRejectedResult => a.status === 'rejected');
      // The rest goes to Redis before the first wave is handed over, so the two overlap; each of
      // its calls is handed over as soon as it is answered (Redis answers a long pipeline in
      // pieces as it reads it), not once the whole wave is.
      const later = failed ? undefined : Promise.allSettled(rest.map((c) => this.writePart(r, c, parts).then((reply) => (handOver(reply), reply))));
      settled.push(...answers);
      for (const a of answers) if (a.status === 'fulfilled') handOver(a.value);
      if (later) settled.push(...(await later));
      else while (settled.length < calls.length) settled.push(failed!);
    }
    const failed = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected').map((s) => s.reason as unknown);
    if (failed.length) {
      const first = failed[0];
      // Some parts may be written (every call counts, even one that never left: another may have).
      if (first instanceof StoreUnavailableError && (failed.length < calls.length || first.outcome === 'unknown')) {
        throw new StoreUnavailableError(`${failed.length} of ${calls.length} parts of the publish failed: ${first.message}`, 'unknown', { cause: first });
      }
      throw first;
    }
    return this.accepted(
      r,
      calls,
      settled.map((s) => (s as PromiseFulfilledResult<PartReply>).value as OkReply),
      !onDurable,
    );
  }

  /**
   * The answer sums each partition's totals (the latest of its calls: totals only grow).
   * `withOnline` false: the online targets went to `onDurable` already; none in the result.
   */
  private accepted(r: PublishRequest, calls: PartCall[], replies: OkReply[], withOnline = true): PublishResult & { kind: 'accepted' } {
    const totals = new Map<number, [number, number]>();
    const online: OnlineTarget[] = [];
    let evicted = 0;
    const fallback: FallbackJob[] = [];
    replies.forEach(([, non, nq, sendTo, ev, jobs], i) => {
      const p = calls[i]!.p;
      const [on, q] = totals.get(p) ?? [0, 0];
      totals.set(p, [Math.max(on, Number(non)), Math.max(q, Number(nq))]);
      if (withOnline) online.push(...onlineTargets(sendTo));
      evicted += ev.length;
      fallback.push(...jobs.map((j) => readJob(p, j)));
    });
    let sumOnline = 0;
    let sumQueued = 0;
    for (const [on, q] of totals.values()) {
      sumOnline += on;
      sumQueued += q;
    }
    return { kind: 'accepted', answer: { id: r.payload.id, online: sumOnline, queued: sumQueued }, online, evicted, fallback };
  }

  /** One PUBLISH_PART call; `idem`: the whole keyed publish in this call (all its targets in the key's partition). */
  private async writePart(r: PublishRequest, call: PartCall, parts: number[], idem?: PublishRequest['idempotency']): Promise<PartReply> {
    const prefix = this.keys.at(call.p);
    const p = r.payload;
    const part = {
      // Without a key, the idempotency key is a placeholder in the partition (a Cluster routes by keys).
      keys: { notif: `${prefix}notif:${p.id}`, seq: `${prefix}notif:seq`, due: `${prefix}notif:due`, idempotency: `${prefix}idem:${idem?.key ?? ''}` },
      args: {
        prefix,
        id: p.id,
        payload: r.payloadJson,
        createdAt: p.createdAt,
        expiresAt: r.effectiveExpiresAt,
        forgetAt: forgetAt(r),
        collapseKey: p.collapseKey,
        maxInbox: r.maxInbox,
        keepOffline: r.keepOffline ? 1 : 0,
        now: r.now,
        eventRetention: this.eventRetentionMs,
        ackDeadline: r.ackDeadlineAt,
        fallback: r.fallback,
        leaseMs: r.leaseMs,
        batchSize: DUE_BATCH,
        parts: call.header ? parts.join(',') : undefined,
        fingerprint: idem?.fingerprint,
        windowMs: idem?.windowMs ?? 0,
        targets: call.deviceIds.join(','),
        users: r.users?.ids.join(','),
        forgetBefore: r.users?.forgetBefore ?? 0,
        usersCap: r.users ? Math.max(0, r.users.maxTargets - call.deviceIds.length) : 0,
      },
    };
    const admit = r.admit;
    if (!admit) return (await this.scripts.publishPart(part)) as PartReply;
    if (admit.now !== r.now) throw new Error('a folded admission runs at the publish\'s time');
    const reply = (await this.scripts.admitPublishPart({ ...part, keys: { ...part.keys, ...admit.keys }, args: { ...part.args, ...admit.args } })) as
      | PartReply
      | ['refused', ...number[]];
    if (reply[0] === 'refused') throw new AdmissionRefused(admit.decision(reply.slice(1) as number[]));
    return reply;
  }

  private async commit(idempotencyKey: string, result: PublishResult & { kind: 'accepted' }): Promise<PublishResult> {
    const answer = (await this.scripts.idemCommit({ keys: { idempotency: idempotencyKey }, args: { answer: JSON.stringify(result.answer) } })) as string;
    return { ...result, answer: JSON.parse(answer) as PublishAnswer };
  }

  /** A committed publish again: its targets still pending and online now get it (again). */
  private async replay(r: PublishRequest, answer: string, id: string, parts: number[]): Promise<PublishResult> {
    const replies = (await Promise.all(
      parts.map((p) => {
        const prefix = this.keys.at(p);
        return this.scripts.replayPart({
          keys: { notif: `${prefix}notif:${id}`, due: `${prefix}notif:due` },
          args: { prefix, id, now: r.now, ackDeadline: r.ackDeadlineAt },
        });
      }),
    )) as [string | null, OnlineReply][];
    const json = replies.find(([payload]) => payload)?.[0];
    const online = replies.flatMap(([, sendTo]) => onlineTargets(sendTo));
    return {
      kind: 'replay',
      answer: JSON.parse(answer) as PublishAnswer,
      pending: json && online.length ? { notification: deliverable(json), online } : undefined,
    };
  }

  async pending(deviceId: string, now: number, limit: number): Promise<Deliverable[]> {
    const prefix = this.keys.of(deviceId);
    const rows = (await this.scripts.pending({
      keys: { inbox: `${prefix}inbox:${deviceId}` },
      args: { prefix, deviceId, now, limit, eventRetention: this.eventRetentionMs },
    })) as string[];
    return rows.map(deliverable);
  }

  /** One ACK call per device partition, sent together; results in the order of `acks`. */
  async ackMany(acks: readonly Ack[], now: number): Promise<boolean[]> {
    if (!acks.length) return [];
    const indexed = acks.map((a, i) => ({ a, i }));
    const out = new Array<boolean>(acks.length).fill(false);
    await Promise.all(
      [...this.keys.byPartition(indexed, (x) => x.a.deviceId)].map(async ([p, group]) => {
        const prefix = this.keys.at(p);
        const changed = (await this.scripts.ack({
          keys: { due: `${prefix}notif:due` },
          args: { prefix, now, eventRetention: this.eventRetentionMs },
          rest: group.flatMap(({ a }) => [a.payload.id, a.deviceId, a.payload.collapseKey ?? '', a.userId ?? '', a.fromInbox === false ? '0' : '1']),
        })) as number[];
        group.forEach(({ i }, j) => (out[i] = changed[j] === 1));
      }),
    );
    return out;
  }

  async armAckDeadlines(targets: readonly { id: string; deviceId: string }[], deadline: number, now: number): Promise<void> {
    if (!targets.length) return;
    await Promise.all(
      [...this.keys.byPartition(targets, (t) => t.deviceId)].map(([p, group]) =>
        this.scripts.arm({ keys: { due: `${this.keys.at(p)}notif:due` }, args: { deadline, now }, rest: group.map((t) => dueMember.redelivered(t.id, t.deviceId)) }),
      ),
    );
  }

  override dueIndexes(now: number): readonly DueIndex[] {
    return [{ name: 'notif:due', dueBy: now }];
  }

  async claimDue(now: number, limit: number, leaseMs: number, partition = 0): Promise<DueClaim> {
    const prefix = this.keys.at(partition);
    const [claimed, unacked, expired, jobs, more] = (await this.scripts.claimDue({
      keys: { due: `${prefix}notif:due` },
      args: { prefix, now, limit, leaseMs, eventRetention: this.eventRetentionMs },
    })) as [number, number, number, RawJob[], number];
    return { claimed, unacked, expired, jobs: jobs.map((j) => readJob(partition, j)), more: more === 1 };
  }

  async renewFallback(keys: readonly string[], until: number): Promise<void> {
    if (!keys.length) return;
    const byPartition = new Map<number, string[]>();
    for (const key of keys) {
      const { p, member } = jobKey(key);
      byPartition.set(p, [...(byPartition.get(p) ?? []), member]);
    }
    await Promise.all([...byPartition].map(([p, members]) => this.scripts.renew({ keys: { due: `${this.keys.at(p)}notif:due` }, args: { untilAt: until }, rest: members })));
  }

  async recordFallback(key: string, results: readonly FallbackResult[], done: boolean): Promise<void> {
    const { p, member } = jobKey(key);
    const prefix = this.keys.at(p);
    const id = member.split('|')[1] ?? '';
    await this.scripts.recordFallback({
      keys: { notif: `${prefix}notif:${id}`, due: `${prefix}notif:due` },
      args: { prefix, member, done: done ? 1 : 0 },
      rest: results.flatMap((r) => [r.deviceId, writeFallback(r), r.registration ?? '']),
    });
  }

  /** The header from the id's partition, then the other parts (together), merged. */
  async status(id: string, now: number): Promise<NotificationStatus | null> {
    const h = headerPartitionOf(this.keys, id);
    const header = await redisCall(this.redis.hgetall(`${this.keys.at(h)}notif:${id}`));
    // Redis forgets by its own clock (PX); forgetAt keeps the rule exact on the caller's clock too.
    if (!header.payload || Number(header.forgetAt) <= now) return null;
    const others = partList(header.parts ?? '').filter((p) => p !== h);
    const hashes = [header, ...(await Promise.all(others.map((p) => redisCall(this.redis.hgetall(`${this.keys.at(p)}notif:${id}`)))))];
    const payload = JSON.parse(header.payload) as NotificationPayload;
    const expiresAt = Number(header.expiresAt);
    const targets = hashes
      .flatMap((hash) =>
        Object.entries(hash)
          .filter(([field]) => field.startsWith('t:'))
          .map(([field, raw]) => readTarget(field.slice(2), raw, expiresAt, now, hash[`f:${field.slice(2)}`])),
      )
      .sort((a, b) => a.deviceId.localeCompare(b.deviceId));
    return { id, createdAt: payload.createdAt, expiresAt: payload.expiresAt, targets };
  }
}

/** When the status is forgotten: NOTIFICATION_RETENTION after the last target can settle. */
function forgetAt(r: PublishRequest): number {
  return Math.max(r.now + 1, r.effectiveExpiresAt + r.retentionMs);
}

/** The request of a resumed publish: the first attempt's id and createdAt, its times moved with it. */
function resumed(r: PublishRequest, id: string, createdAt: number): PublishRequest {
  const shift = createdAt - r.payload.createdAt;
  if (id === r.payload.id && shift === 0) return r;
  const payload: NotificationPayload = { ...r.payload, id, createdAt, expiresAt: r.payload.expiresAt === undefined ? undefined : r.payload.expiresAt + shift };
  return { ...r, payload, payloadJson: JSON.stringify(payload), effectiveExpiresAt: r.effectiveExpiresAt + shift };
}

function partList(parts: string): number[] {
  return parts ? parts.split(',').map(Number) : [];
}

/** Push job keys outside Redis: `<partition>/<due member>`. */
function jobKey(key: string): { p: number; member: string } {
  const slash = key.indexOf('/');
  return { p: Number(key.slice(0, slash)), member: key.slice(slash + 1) };
}

/** [member, payload JSON or false, deviceId, registration JSON or '', ...] as lease_job returns it. */
type RawJob = [string, string | null, ...string[]];

/** {instanceId, 'deviceId,deviceId,...', ...}: online targets as the scripts return them (ONLINE in notification.scripts.ts). */
type OnlineReply = string[];

/** {'ok', online, queued, online targets, evictedIds, jobs} of one PUBLISH_PART call. */
type OkReply = ['ok', number, number, OnlineReply, string[], RawJob[]];
type ResumeReply = ['resume', string, string, string];
type PartReply =
  | OkReply
  | ['conflict']
  | ['replay', string, string | null, OnlineReply]
  | ['replay_parts', string, string, string]
  | ResumeReply
  | ['unfolded'];

type BeginReply = ['conflict'] | ['replay', string, string, string] | ResumeReply | ['fresh'];

function readJob(p: number, [member, json, ...flat]: RawJob): FallbackJob {
  const targets: FallbackJob['targets'] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) targets.push({ deviceId: flat[i]!, ...(flat[i + 1] ? { registration: flat[i + 1] } : {}) });
  return { key: `${p}/${member}`, notification: deliverable(json ?? 'null'), trigger: member.endsWith('|u') ? 'unacked' : 'offline', targets };
}

/** The calls in two waves: those up to FIRST_WAVE targets (one call at least), then the rest (maybe none). */
function waves(calls: PartCall[]): [PartCall[], PartCall[]] {
  let size = 0;
  let i = 0;
  while (i < calls.length && (i === 0 || size + calls[i]!.deviceIds.length <= FIRST_WAVE)) size += calls[i++]!.deviceIds.length;
  return [calls.slice(0, i), calls.slice(i)];
}

function onlineTargets(reply: OnlineReply): OnlineTarget[] {
  const out: OnlineTarget[] = [];
  for (let i = 0; i + 1 < reply.length; i += 2) {
    const instanceId = reply[i]!;
    for (const deviceId of reply[i + 1]!.split(',')) out.push({ deviceId, instanceId });
  }
  return out;
}

function deliverable(json: string): Deliverable {
  return { payload: JSON.parse(json) as NotificationPayload, bytes: Buffer.byteLength(json) };
}
