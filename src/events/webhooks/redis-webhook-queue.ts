import type { RedisClient } from '../../redis/redis-connection';
import { BoundScript } from '../../redis/lua-script';
import { redisCall } from '../../redis/redis-errors';
import { eventIdTime } from '../event.types';
import { Claim, ClaimResult, EnqueueResult, QueuedEvent, Settlement, WebhookQueue } from './webhook-queue';
import { CLAIM, CURSOR, ENQUEUE, HOLD_INTAKE, RENEW, SETTLE } from './webhook.scripts';

type ClaimReply = [number, string[], string | null];

/** One URL's webhook queue in Redis; the layout is described in webhook.scripts.ts. */
export class RedisWebhookQueue extends WebhookQueue {
  private readonly scripts: {
    enqueue: BoundScript<typeof ENQUEUE>;
    holdIntake: BoundScript<typeof HOLD_INTAKE>;
    claim: BoundScript<typeof CLAIM>;
    renew: BoundScript<typeof RENEW>;
    settle: BoundScript<typeof SETTLE>;
    cursor: BoundScript<typeof CURSOR>;
  };
  private readonly k: Record<'lease' | 'cursor' | 'ready' | 'heads' | 'claims' | 'tries' | 'disabled', string>;
  private readonly qbase: string;

  /** `base`: `<prefix>wh:<url hash>:`; `eventsKey`: the event log (`<prefix>events`); `ttlMs`: how long untouched bookkeeping lives. */
  constructor(
    private readonly redis: RedisClient,
    base: string,
    private readonly eventsKey: string,
    private readonly ttlMs: number,
  ) {
    super();
    this.scripts = { enqueue: ENQUEUE.bind(redis), holdIntake: HOLD_INTAKE.bind(redis), claim: CLAIM.bind(redis), renew: RENEW.bind(redis), settle: SETTLE.bind(redis), cursor: CURSOR.bind(redis) };
    const key = (name: string) => `${base}${name}`;
    this.k = { lease: key('lease'), cursor: key('cursor'), ready: key('ready'), heads: key('heads'), claims: key('claims'), tries: key('tries'), disabled: key('disabled') };
    this.qbase = key('q:');
  }

  async holdIntake(owner: string, _now: number, leaseMs: number): Promise<boolean> {
    return (await this.scripts.holdIntake({ keys: { lease: this.k.lease }, args: { owner, leaseMs } })) === 1;
  }

  async cursor(): Promise<string> {
    return (await this.scripts.cursor({ keys: { cursor: this.k.cursor, events: this.eventsKey }, args: { ttl: this.ttlMs } })) as string;
  }

  async enqueue(owner: string, position: string, events: readonly QueuedEvent[], now: number): Promise<EnqueueResult> {
    const rest: (string | number)[] = [];
    for (const e of events) rest.push(e.key, eventIdTime(e.id), `${e.id} ${e.body}`);
    const reply = await this.scripts.enqueue({
      keys: { lease: this.k.lease, cursor: this.k.cursor, ready: this.k.ready, heads: this.k.heads },
      args: { owner, position, now, ttl: this.ttlMs, qbase: this.qbase },
      rest,
    });
    return reply === 1 ? { held: true, refused: 0 } : { held: false };
  }

  async claim(tokenBase: string, now: number, max: number, leaseUntil: number): Promise<ClaimResult> {
    const [disabled, flat, next] = (await this.scripts.claim({
      keys: { ready: this.k.ready, heads: this.k.heads, claims: this.k.claims, tries: this.k.tries, disabled: this.k.disabled },
      args: { tokenBase, now, max, leaseUntil, qbase: this.qbase, ttl: this.ttlMs },
    })) as ClaimReply;
    const claims: Claim[] = [];
    for (let i = 0; i + 3 < flat.length; i += 4) {
      const head = flat[i + 2]!;
      const space = head.indexOf(' ');
      claims.push({ key: flat[i]!, token: flat[i + 1]!, id: head.slice(0, space), body: head.slice(space + 1), attempts: Number(flat[i + 3]) });
    }
    return { claims, disabled: disabled === 1, nextDue: next === null ? undefined : Number(next) };
  }

  async renew(claims: readonly Pick<Claim, 'key' | 'token'>[], leaseUntil: number): Promise<void> {
    if (claims.length === 0) return;
    await this.scripts.renew({ keys: { ready: this.k.ready, claims: this.k.claims }, args: { leaseUntil }, rest: claims.flatMap((c) => [c.key, c.token]) });
  }

  async settle(settlements: readonly Settlement[], now: number): Promise<void> {
    if (settlements.length === 0) return;
    const rest: (string | number)[] = [];
    for (const s of settlements) {
      const retry = s.outcome.kind === 'retry' ? s.outcome : undefined;
      rest.push(s.key, s.token, s.id, s.outcome.kind, retry?.at ?? 0, retry?.attempts ?? 0);
    }
    await this.scripts.settle({
      keys: { ready: this.k.ready, heads: this.k.heads, claims: this.k.claims, tries: this.k.tries },
      args: { now, qbase: this.qbase, ttl: this.ttlMs },
      rest,
    });
  }

  async setDisabled(disabled: boolean): Promise<void> {
    // Kept until an instance starts (see WebhookService): one small key per configured URL.
    if (disabled) await redisCall(this.redis.set(this.k.disabled, '1'));
    else await redisCall(this.redis.del(this.k.disabled));
  }

  async backlog(): Promise<{ oldest?: number; keys: number }> {
    const [first, keys] = await Promise.all([redisCall(this.redis.zrange(this.k.heads, '0', '0', 'WITHSCORES')), redisCall(this.redis.zcard(this.k.heads))]);
    return { oldest: first[1] === undefined ? undefined : Number(first[1]), keys };
  }
}
