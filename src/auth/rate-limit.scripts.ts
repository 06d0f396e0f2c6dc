import { ArgKind, luaScript, LuaScriptSpec } from '../redis/lua-script';

/**
 * The Redis rate limiter's script (RateLimiter.admit sends two calls of it together when the two
 * rules' keys are in different partitions, else RATE_ADMIT, or a store's write script made with
 * withAdmitFirst): the sliding-window estimate of sliding-window.ts over two
 * fixed-window counters, decided and counted atomically (instances racing on one key cannot both
 * take its last hit) in one round trip.
 *
 * Layout (in the partition of `<rule>:<key>`, README "Redis key layout"; both windows share it):
 *   ratelimit:<rule>:<key>:<window index>   string, hits counted in that window; expires when the
 *                                           window after it ends (then it counts for nothing)
 *
 * Returns {allowed (1/0), current, previous}; `count` 0 only reads. The counters are read with one
 * MGET (ADMIT: all four at once) rather than a GET each: an admitted POST costs Redis three
 * commands fewer.
 */
const DECIDE = `
local function decide_counts(current, previous, currentKey, now, windowMs, limit, count, expiresIn)
  current = tonumber(current or '0')
  previous = tonumber(previous or '0')
  local inside = 1 - (now % windowMs) / windowMs
  if previous * inside + current + 1 > limit then return {0, current, previous} end
  if count > 0 then
    current = redis.call('INCRBY', currentKey, count)
    if current == count then redis.call('PEXPIRE', currentKey, expiresIn) end
  end
  return {1, current, previous}
end
local function decide(currentKey, previousKey, now, windowMs, limit, count, expiresIn)
  local counts = redis.call('MGET', currentKey, previousKey)
  return decide_counts(counts[1], counts[2], currentKey, now, windowMs, limit, count, expiresIn)
end
`;

export const RATE_LIMIT = luaScript({
  name: 'pgRateLimit',
  keys: ['current', 'previous'],
  args: { now: 'number', windowMs: 'number', limit: 'number', count: 'number', expiresIn: 'number' },
  prelude: DECIDE,
  body: `return decide(currentKey, previousKey, now, windowMs, limit, count, expiresIn)`,
});

/**
 * RateLimiter.admit's Lua: the gate is only read; the counted rule is decided and counted only if
 * the gate lets the request through, so nothing needs giving back. Returns {gate allowed, gate
 * current, gate previous, counted allowed, counted current, counted previous}; the counted rule's
 * three are 1, 0, 0 when the gate refused (it was not looked at).
 */
const ADMIT = `${DECIDE}
local function admit(gateCurrentKey, gatePreviousKey, countedCurrentKey, countedPreviousKey, now, gateWindowMs, gateLimit,
    gateExpiresIn, countedWindowMs, countedLimit, countedExpiresIn)
  -- All four counters in one read: nothing is written before the counted rule's INCRBY.
  local counts = redis.call('MGET', gateCurrentKey, gatePreviousKey, countedCurrentKey, countedPreviousKey)
  local gate = decide_counts(counts[1], counts[2], gateCurrentKey, now, gateWindowMs, gateLimit, 0, gateExpiresIn)
  if gate[1] == 0 then return {0, gate[2], gate[3], 1, 0, 0} end
  local counted = decide_counts(counts[3], counts[4], countedCurrentKey, now, countedWindowMs, countedLimit, 1, countedExpiresIn)
  return {1, gate[2], gate[3], counted[1], counted[2], counted[3]}
end
`;

const ADMIT_KEYS = ['gateCurrent', 'gatePrevious', 'countedCurrent', 'countedPrevious'] as const;
const ADMIT_ARGS = {
  now: 'number',
  gateWindowMs: 'number',
  gateLimit: 'number',
  gateExpiresIn: 'number',
  countedWindowMs: 'number',
  countedLimit: 'number',
  countedExpiresIn: 'number',
} as const satisfies Record<string, ArgKind>;
const ADMIT_CALL = `admit(gateCurrentKey, gatePreviousKey, countedCurrentKey, countedPreviousKey, now, gateWindowMs, gateLimit,
  gateExpiresIn, countedWindowMs, countedLimit, countedExpiresIn)`;

/** RateLimiter.admit in one call, for when both rules' keys share a partition (always on one Redis). */
export const RATE_ADMIT = luaScript({
  name: 'pgRateAdmit',
  keys: ADMIT_KEYS,
  args: ADMIT_ARGS,
  prelude: ADMIT,
  body: `return ${ADMIT_CALL}`,
});

/**
 * Another script with RateLimiter.admit run first, in the same call (see FoldedAdmit): when the
 * admission refuses, the script returns {'refused', <RATE_ADMIT's six numbers>} and runs nothing
 * else; when it admits (the hit counted), the script's own body runs. Its keys and arguments come
 * after the script's own (the spec's `now`, when it has one, is the admission's too). Every key
 * must be in one partition: on one Redis only.
 */
export function withAdmitFirst<K extends string, A extends Record<string, ArgKind> & { now: 'number' | 'int' }>(spec: LuaScriptSpec<K, A>) {
  const { now: _shared, ...admitArgs } = ADMIT_ARGS;
  return luaScript({
    ...spec,
    name: `${spec.name}Admitted`,
    keys: [...spec.keys, ...ADMIT_KEYS],
    args: { ...spec.args, ...admitArgs },
    prelude: `${spec.prelude ?? ''}\n${ADMIT}`,
    body: `local admitted = ${ADMIT_CALL}
if admitted[1] == 0 or admitted[4] == 0 then return {'refused', unpack(admitted)} end
${spec.body}`,
  });
}
