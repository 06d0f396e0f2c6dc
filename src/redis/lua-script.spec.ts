import Redis from 'ioredis';
import { deleteKeys, testRedisUrl, uniquePrefix } from '../../test/support/redis';
import { StoreUnavailableError } from '../common/store-unavailable.error';
import { luaScript } from './lua-script';

const INCR_BY = luaScript({
  name: 'testIncrBy',
  keys: ['counter'],
  args: { by: 'number', label: 'string?' },
  rest: true,
  body: `
local n = redis.call('INCRBY', counterKey, by)
return {n, label or false, #rest}
`,
});

/** The list left in ARGV ('argv'): the script reads it from restAt on, without a copy. */
const SUM_PAIRS = luaScript({
  name: 'testSumPairs',
  keys: ['total'],
  args: { scale: 'number' },
  rest: 'argv',
  body: `
local out = {}
for i = restAt, #ARGV, 2 do out[#out + 1] = ARGV[i] .. '=' .. (tonumber(ARGV[i + 1]) * scale) end
redis.call('SET', totalKey, #out)
return out
`,
});

describe('LuaScript (real Redis)', () => {
  const prefix = uniquePrefix('lua');
  const redis = new Redis(testRedisUrl(), { enableAutoPipelining: true });
  afterAll(async () => {
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  it('passes named keys and arguments, runs by EVALSHA, and loads itself again after the script cache was flushed', async () => {
    const run = INCR_BY.bind(redis);
    const key = `${prefix}counter`;
    expect(await run({ keys: { counter: key }, args: { by: 2, label: 'a' }, rest: ['x', 'y'] })).toEqual([2, 'a', 2]);
    const sent = jest.spyOn(redis, 'sendCommand');
    try {
      expect(await run({ keys: { counter: key }, args: { by: 3, label: undefined } })).toEqual([5, null, 0]);
      expect(sent.mock.calls.map(([c]) => c.name)).toEqual(['evalsha']);
      sent.mockClear();
      await redis.script('FLUSH'); // as after a restart or on a promoted replica
      // A burst in one pipeline, every call refused with NOSCRIPT and run again by EVAL, once each.
      const burst = await Promise.all(Array.from({ length: 5 }, () => run({ keys: { counter: key }, args: { by: 1, label: 'b' } })));
      expect(burst.map((r) => (r as number[])[0]).sort((a, b) => a! - b!)).toEqual([6, 7, 8, 9, 10]);
      expect(sent.mock.calls.map(([c]) => c.name).filter((n) => n !== 'script')).toEqual([...Array(5).fill('evalsha'), ...Array(5).fill('eval')]);
    } finally {
      sent.mockRestore();
    }
    expect(await redis.get(key)).toBe('10');
  });

  it("leaves a list declared 'argv' in ARGV, starting at restAt after the named arguments", async () => {
    const run = SUM_PAIRS.bind(redis);
    const key = `${prefix}pairs`;
    expect(await run({ keys: { total: key }, args: { scale: 10 }, rest: ['a', 1, 'b', 2.5] })).toEqual(['a=10', 'b=25']);
    expect(await redis.get(key)).toBe('2');
    expect(await run({ keys: { total: key }, args: { scale: 1 } })).toEqual([]);
    expect(SUM_PAIRS.source).not.toContain('local rest =');
  });

  it('loads its scripts into Redis whenever the connection becomes ready, so the first call after a reconnect needs no EVAL', async () => {
    const run = INCR_BY.bind(redis);
    const key = `${prefix}reconnected`;
    await run({ keys: { counter: key }, args: { by: 1, label: undefined } });
    await redis.script('FLUSH'); // a restarted server
    const ready = new Promise((resolve) => redis.once('ready', resolve));
    redis.disconnect(true);
    await ready;
    const sha = (await redis.script('LOAD', 'return 0')) as string; // answered after the loads sent at 'ready'
    expect(sha).toMatch(/^[0-9a-f]{40}$/);
    const sent = jest.spyOn(redis, 'sendCommand');
    try {
      expect(await run({ keys: { counter: key }, args: { by: 1, label: undefined } })).toEqual([2, null, 0]);
      expect(sent.mock.calls.map(([c]) => c.name)).toEqual(['evalsha']);
    } finally {
      sent.mockRestore();
    }
  });

  it("gives an 'int' argument to Lua twice: the number, and as <name>S the caller's string, which a command stores as sent", async () => {
    const STAMP = luaScript({
      name: 'testStamp',
      keys: ['stamp'],
      args: { at: 'int', ttl: 'int' },
      body: `
redis.call('SET', stampKey, atS, 'PX', ttlS)
return {tostring(at + ttl), atS, type(at), type(atS)}
`,
    });
    const key = `${prefix}stamp`;
    const at = 1_796_191_995_954;
    expect(await STAMP.bind(redis)({ keys: { stamp: key }, args: { at, ttl: 60_000 } })).toEqual([String(at + 60_000), String(at), 'number', 'string']);
    expect(await redis.get(key)).toBe(String(at));
    expect(await redis.pttl(key)).toBeGreaterThan(59_000);
    expect(() => luaScript({ name: 'clash', keys: [], args: { at: 'int', atS: 'string' }, body: 'return 0' })).toThrow(/atS is used twice/);
  });

  it("gives a 'digits' argument to Lua as the caller's string only, which a command stores as sent", async () => {
    const KEEP = luaScript({
      name: 'testKeep',
      keys: ['kept'],
      args: { at: 'digits' },
      body: `
redis.call('SET', keptKey, at)
return {type(at), 'x|' .. at}
`,
    });
    const key = `${prefix}kept`;
    const at = 1_796_191_995_954;
    expect(await KEEP.bind(redis)({ keys: { kept: key }, args: { at } })).toEqual(['string', `x|${at}`]);
    expect(await redis.get(key)).toBe(String(at));
  });

  it('reports a Redis it cannot reach as StoreUnavailableError, and a script error as it is', async () => {
    const down = new Redis({ port: 1, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    down.on('error', () => undefined);
    await expect(INCR_BY.bind(down)({ keys: { counter: `${prefix}x` }, args: { by: 1, label: undefined } })).rejects.toBeInstanceOf(StoreUnavailableError);
    down.disconnect();
    await redis.set(`${prefix}text`, 'not a number');
    await expect(INCR_BY.bind(redis)({ keys: { counter: `${prefix}text` }, args: { by: 1, label: undefined } })).rejects.toThrow(/not an integer/);
  });
});
