import type { RedisClient } from '../../redis/redis-connection';
import { BoundScript } from '../../redis/lua-script';
import { KeyLayout } from '../../redis/partitions';
import { redisCall } from '../../redis/redis-errors';
import { eventIdTime } from '../event.types';
import { Claim, ClaimResult, EnqueueResult, QueuedEvent, Settlement, WebhookQueue, groupOf } from './webhook-queue';
import { CLAIM, CURSOR, ENQUEUE, RENEW, SETTLE } from './webhook.scripts';

type ClaimReply = [string[], string | null];

/** One URL's webhook queues in Redis, one per lease group; the layout is described in webhook.scripts.ts. */
export class RedisWebhookQueue extends WebhookQueue {
  private readonly scripts: {
    enqueue: BoundScript<typeof ENQUEUE>;
    claim: BoundScript<typeof CLAIM>;
    renew: BoundScript<typeof RENEW>;
    settle: BoundScript<typeof SETTLE>;
    cursor: BoundScript<typeof CURSOR>;
  };
  private readonly disabledKey: string;

  /** `name`: `wh:<url hash>:`, under each group's prefix; `ttlMs`: how long untouched bookkeeping lives. */
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeyLayout,
    private readonly name: string,
    private readonly ttlMs: number,
  ) {
    super();
    this.scripts = { enqueue: ENQUEUE.bind(redis), claim: CLAIM.bind(redis), renew: RENEW.bind(redis), settle: SETTLE.bind(redis), cursor: CURSOR.bind(redis) };
    this.disabledKey = `${keys.control}${name}disabled`;
  }

  /** The key prefix of group g's queue of this URL. */
  private base(g: number): string {
    return `${this.keys.at(this.keys.partitionsOfGroup(g)[0]!)}${this.name}`;
  }

  private k(g: number) {
    const base = this.base(g);
    return { cursors: `${base}cursors`, legacy: `${base}cursor`, ready: `${base}ready`, heads: `${base}heads`, claims: `${base}claims`, tries: `${base}tries`, qbase: `${base}q:` };
  }

  async cursor(p: number, start: () => Promise<string>): Promise<string> {
    const k = this.k(groupOf(p));
    const stored = await redisCall(this.redis.hget(k.cursors, String(p)));
    if (stored !== null) return stored;
    return (await this.scripts.cursor({ keys: { cursors: k.cursors, legacy: k.legacy }, args: { p: String(p), start: await start(), ttl: this.ttlMs } })) as string;
  }

  async enqueue(p: number, expected: string, position: string, events: readonly QueuedEvent[], now: number): Promise<EnqueueResult> {
    const k = this.k(groupOf(p));
    const rest: (string | number)[] = [];
    for (const e of events) rest.push(e.key, eventIdTime(e.id), `${e.id} ${e.body}`);
    const reply = await this.scripts.enqueue({
      keys: { cursors: k.cursors, ready: k.ready, heads: k.heads },
      args: { p: String(p), expected, position, now, ttl: this.ttlMs, qbase: k.qbase },
      rest,
    });
    return reply === 1 ? { moved: false, refused: 0 } : { moved: true };
  }

  async claim(g: number, tokenBase: string, now: number, max: number, leaseUntil: number): Promise<ClaimResult> {
    const k = this.k(g);
    const [flat, next] = (await this.scripts.claim({
      keys: { ready: k.ready, heads: k.heads, claims: k.claims, tries: k.tries },
      args: { tokenBase, now, max, leaseUntil, qbase: k.qbase, ttl: this.ttlMs },
    })) as ClaimReply;
    const claims: Claim[] = [];
    for (let i = 0; i + 3 < flat.length; i += 4) {
      const head = flat[i + 2]!;
      const space = head.indexOf(' ');
      claims.push({ group: g, key: flat[i]!, token: flat[i + 1]!, id: head.slice(0, space), body: head.slice(space + 1), attempts: Number(flat[i + 3]) });
    }
    return { claims, nextDue: next === null ? undefined : Number(next) };
  }

  async renew(claims: readonly Pick<Claim, 'group' | 'key' | 'token'>[], leaseUntil: number): Promise<void> {
    await Promise.all(
      [...byGroup(claims)].map(([g, list]) => {
        const k = this.k(g);
        return this.scripts.renew({ keys: { ready: k.ready, claims: k.claims }, args: { leaseUntil }, rest: list.flatMap((c) => [c.key, c.token]) });
      }),
    );
  }

  async settle(settlements: readonly Settlement[], now: number): Promise<void> {
    await Promise.all(
      [...byGroup(settlements)].map(([g, list]) => {
        const k = this.k(g);
        const rest: (string | number)[] = [];
        for (const s of list) {
          const retry = s.outcome.kind === 'retry' ? s.outcome : undefined;
          rest.push(s.key, s.token, s.id, s.outcome.kind, retry?.at ?? 0, retry?.attempts ?? 0);
        }
        return this.scripts.settle({ keys: { ready: k.ready, heads: k.heads, claims: k.claims, tries: k.tries }, args: { now, qbase: k.qbase, ttl: this.ttlMs }, rest });
      }),
    );
  }

  async setDisabled(disabled: boolean): Promise<void> {
    // Kept until an instance starts (see WebhookService): one small key per configured URL.
    if (disabled) await redisCall(this.redis.set(this.disabledKey, '1'));
    else await redisCall(this.redis.del(this.disabledKey));
  }

  async isDisabled(): Promise<boolean> {
    return (await redisCall(this.redis.exists(this.disabledKey))) === 1;
  }

  async backlog(groups: readonly number[]): Promise<{ oldest?: number; keys: number }> {
    const parts = await Promise.all(
      groups.map(async (g) => {
        const heads = this.k(g).heads;
        const [first, keys] = await Promise.all([redisCall(this.redis.zrange(heads, '0', '0', 'WITHSCORES')), redisCall(this.redis.zcard(heads))]);
        return { oldest: first[1] === undefined ? undefined : Number(first[1]), keys };
      }),
    );
    const oldest = parts.reduce<number | undefined>((min, p) => (p.oldest === undefined ? min : Math.min(min ?? Infinity, p.oldest)), undefined);
    return { oldest, keys: parts.reduce((sum, p) => sum + p.keys, 0) };
  }
}

function byGroup<T extends { group: number }>(items: readonly T[]): Map<number, T[]> {
  const groups = new Map<number, T[]>();
  for (const item of items) {
    const list = groups.get(item.group);
    if (list) list.push(item);
    else groups.set(item.group, [item]);
  }
  return groups;
}
