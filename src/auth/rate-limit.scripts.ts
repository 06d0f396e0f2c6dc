import { luaScript } from '../redis/lua-script';

/**
 * The Redis rate limiter's script (RateLimiter.admit sends two calls of it together when the two
 * rules' keys are in different partitions, else RATE_ADMIT): the sliding-window estimate of sliding-window.ts over two
 * fixed-window counters, decided and counted atomically (instances racing on one key cannot both
 * take its last hit) in one round trip.
 *
 * Layout (in the partition of `<rule>:<key>`, README "Redis key layout"; both windows share it):
 *   ratelimit:<rule>:<key>:<window index>   string, hits counted in that window; expires when the
 *                                           window after it ends (then it counts for nothing)
 *
 * Returns {allowed (1/0), current, previous}; `count` 0 only reads.
 */
const DECIDE = `
local function decide(currentKey, previousKey, now, windowMs, limit, count, expiresIn)
  local current = tonumber(redis.call('GET', currentKey) or '0')
  local previous = tonumber(redis.call('GET', previousKey) or '0')
  local inside = 1 - (now % windowMs) / windowMs
  if previous * inside + current + 1 > limit then return {0, current, previous} end
  if count > 0 then
    current = redis.call('INCRBY', currentKey, count)
    if current == count then redis.call('PEXPIRE', currentKey, expiresIn) end
  end
  return {1, current, previous}
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
 * RateLimiter.admit in one call, for when both rules' keys share a partition (always on one Redis):
 * the gate is only read; the counted rule is decided and counted only if the gate lets the request
 * through, so nothing needs giving back. Returns {gate allowed, gate current, gate previous,
 * counted allowed, counted current, counted previous}; the counted rule's three are 1, 0, 0 when the
 * gate refused (it was not looked at).
 */
export const RATE_ADMIT = luaScript({
  name: 'pgRateAdmit',
  keys: ['gateCurrent', 'gatePrevious', 'countedCurrent', 'countedPrevious'],
  args: {
    now: 'number',
    gateWindowMs: 'number',
    gateLimit: 'number',
    gateExpiresIn: 'number',
    countedWindowMs: 'number',
    countedLimit: 'number',
    countedExpiresIn: 'number',
  },
  prelude: DECIDE,
  body: `
local gate = decide(gateCurrentKey, gatePreviousKey, now, gateWindowMs, gateLimit, 0, gateExpiresIn)
if gate[1] == 0 then return {0, gate[2], gate[3], 1, 0, 0} end
local counted = decide(countedCurrentKey, countedPreviousKey, now, countedWindowMs, countedLimit, 1, countedExpiresIn)
return {1, gate[2], gate[3], counted[1], counted[2], counted[3]}
`,
});
