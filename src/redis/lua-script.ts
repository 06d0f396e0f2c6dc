import { createHash } from 'node:crypto';
import { Cluster } from 'ioredis';
import type { RedisClient } from './redis-connection';
import { asStoreError, REDIRECTED } from './redis-errors';

/**
 * How an argument travels: Redis passes every ARGV as a string; the prelude converts it back.
 * 'int' (a time or a duration in ms) is a number for Lua's arithmetic, and its string as the caller
 * sent it is kept beside it, as the local `<name>S`, for the commands that take it: a Lua number
 * passed to a command is formatted with sprintf('%.17g'), some 3,000 instructions each in Redis
 * 7.0 (about 12 % of a session's start, docs/performance.md, nineteenth round).
 * 'digits' is a number the script only passes on (to a command, or into a string): Lua gets the
 * caller's string alone, without the tonumber (a 13-digit time costs strtod some 2,000).
 */
export type ArgKind = 'string' | 'number' | 'int' | 'digits' | 'string?';
type ArgValue<K extends ArgKind> = K extends 'number' | 'int' | 'digits' ? number : K extends 'string?' ? string | undefined : string;

const LUA_KEYWORDS = new Set(
  'and break do else elseif end false for function goto if in local nil not or repeat return then true until while'.split(' '),
);

export interface LuaScriptSpec<K extends string, A extends Record<string, ArgKind>> {
  /** The script's name, for error messages. */
  name: string;
  /** Key names, in KEYS order; in Lua each is a local `<name>Key`. */
  keys: readonly K[];
  /** Argument names and kinds, in ARGV order; in Lua each is a local of that name. */
  args: A;
  /**
   * Whether a list of further values follows the named arguments. true: in Lua, the table `rest`
   * (a copy); 'argv': no copy, the values stay in ARGV from index `restAt` on (for a hot script
   * with a long list, such as a batch of heartbeats).
   */
  rest?: boolean | 'argv';
  /** Lua shared between scripts (functions), placed before the locals. */
  prelude?: string;
  body: string;
}

export interface LuaCall<K extends string, A extends Record<string, ArgKind>> {
  keys: Record<K, string>;
  args: { [P in keyof A]: ArgValue<A[P]> };
  rest?: readonly (string | number)[];
}

/**
 * A Lua script called with named keys and arguments. The Lua side gets the same names as locals
 * (`deviceId`, `now`, `presenceKey`...), declared by a generated prelude, so neither side counts
 * positions. It runs with EVALSHA (one round trip), and with EVAL after a NOSCRIPT, e.g. when
 * Redis restarted and lost its script cache. Failures to reach Redis come back as
 * StoreUnavailableError.
 *
 * Not through ioredis's defineCommand: with auto-pipelining, ioredis makes a Pipeline per event-
 * loop turn and copies every defined command onto it, which with our ~40 scripts took more CPU
 * than the script calls themselves (bench push with --cpu-prof: the Pipeline constructor was 3 %
 * of the gateway's CPU at 1k POST/s). Like defineCommand, each connection gets every script bound
 * to it loaded (SCRIPT LOAD) when it becomes ready, so a first call never meets NOSCRIPT on a
 * fresh or restarted server: a call that times out there (a stalled Redis) would otherwise never
 * run at all, where a known script runs once Redis resumes.
 */
export class LuaScript<K extends string, A extends Record<string, ArgKind>> {
  readonly source: string;
  private readonly argNames: (keyof A & string)[];

  constructor(readonly spec: LuaScriptSpec<K, A>) {
    this.argNames = Object.keys(spec.args);
    const strings = this.argNames.filter((n) => spec.args[n] === 'int').map((n) => `${n}S`);
    const names = [...spec.keys.map((k) => `${k}Key`), ...this.argNames, ...strings, ...(spec.rest === 'argv' ? ['restAt'] : spec.rest ? ['rest'] : [])];
    const clash = names.find((n, i) => names.indexOf(n) !== i || LUA_KEYWORDS.has(n));
    if (clash) throw new Error(`script ${spec.name}: the local name ${clash} is used twice or is a Lua keyword`);
    this.source = [spec.prelude ?? '', this.locals(), spec.body].join('\n');
  }

  /**
   * Registers the script on a connection and returns the function that runs it there. On a Cluster
   * the script carries the `#!lua` shebang, so Redis 7 refuses any key outside the slot of its
   * first key instead of silently allowing a cross-slot key that happens to be on the same master
   * (which would break at the next resharding). ioredis routes the call by its first key.
   */
  bind(redis: RedisClient): (call: LuaCall<K, A>) => Promise<unknown> {
    const lua = redis instanceof Cluster ? `#!lua\n${this.source}` : this.source;
    const sha = createHash('sha1').update(lua).digest('hex');
    preload(redis, lua);
    const numberOfKeys = this.spec.keys.length;
    return (call) => {
      const argv: (string | number)[] = this.spec.keys.map((k) => call.keys[k]);
      for (const name of this.argNames) argv.push(call.args[name] ?? '');
      if (call.rest) for (const value of call.rest) argv.push(value);
      return redis
        .evalsha(sha, numberOfKeys, ...argv)
        .catch((err: unknown) => {
          // Not in this server's script cache (a restart, a failover, a new node): EVAL loads it.
          if (err instanceof Error && err.message.startsWith('NOSCRIPT')) return redis.eval(lua, numberOfKeys, ...argv);
          throw err;
        })
        .catch((err: unknown) => {
          // A MOVED or ASK that reached us was not followed by ioredis (a pipeline of calls for
          // several slots of a node that lost them: see SLOT_MAP_REFRESH_MS): read the slot map now,
          // so the next call goes where the slot is.
          if (redis instanceof Cluster && err instanceof Error && REDIRECTED.test(err.message)) redis.refreshSlotsCache();
          throw asStoreError(err);
        });
    };
  }

  private locals(): string {
    const lines = this.spec.keys.map((k, i) => `local ${k}Key = KEYS[${i + 1}]`);
    Object.entries<ArgKind>(this.spec.args).forEach(([name, kind], i) => {
      const argv = `ARGV[${i + 1}]`;
      switch (kind) {
        case 'number':
          lines.push(`local ${name} = tonumber(${argv})`);
          break;
        case 'int':
          lines.push(`local ${name}S = ${argv}`, `local ${name} = tonumber(${name}S)`);
          break;
        case 'string?':
          lines.push(`local ${name} = ${argv} ~= '' and ${argv} or nil`);
          break;
        case 'string':
        case 'digits':
          lines.push(`local ${name} = ${argv}`);
          break;
      }
    });
    if (this.spec.rest === 'argv') lines.push(`local restAt = ${this.argNames.length + 1}`);
    else if (this.spec.rest) {
      lines.push(`local rest = {}`, `for i = ${this.argNames.length + 1}, #ARGV do rest[#rest + 1] = ARGV[i] end`);
    }
    return lines.join('\n');
  }
}

/** The scripts bound to each client, loaded on each of its (re)connections. */
const bound = new WeakMap<RedisClient, Set<string>>();

function preload(redis: RedisClient, lua: string): void {
  let scripts = bound.get(redis);
  if (!scripts) {
    bound.set(redis, (scripts = new Set()));
    const all = scripts;
    redis.on('ready', () => loadScripts(redis, [...all]));
  }
  if (scripts.has(lua)) return;
  scripts.add(lua);
  if (redis.status === 'ready') loadScripts(redis, [lua]);
}

/** SCRIPT LOAD on the server (every master of a Cluster); a failure is left to the NOSCRIPT fallback. */
function loadScripts(redis: RedisClient, scripts: string[]): void {
  for (const node of redis instanceof Cluster ? redis.nodes('master') : [redis]) {
    for (const lua of scripts) node.script('LOAD', lua).catch(() => undefined);
  }
}

/** The function `script.bind(redis)` returns. */
export type BoundScript<S> = S extends LuaScript<infer K, infer A> ? (call: LuaCall<K, A>) => Promise<unknown> : never;

export function luaScript<K extends string, A extends Record<string, ArgKind>>(spec: LuaScriptSpec<K, A>): LuaScript<K, A> {
  return new LuaScript(spec);
}
