import { luaScript } from '../redis/lua-script';

/**
 * The Redis rate limiter's one script: the sliding-window estimate of sliding-window.ts over two
 * fixed-window counters, decided and counted atomically (instances racing on one key cannot both
 * take its last hit) in one round trip.
 *
 * Layout (under REDIS_PREFIX, so on a Cluster they share its hash tag like every other key):
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
 * RateLimiter.admit in one round trip: the gate rule is only read (a request it blocks is not
 * counted against the other), then the counted rule is decided and counted as RATE_LIMIT does.
 * Returns {which (0 both passed, 1 the gate refused, 2 the counted rule refused), current, previous}
 * with the counts of the rule that refused.
 */
export const RATE_ADMIT = luaScript({
  name: 'pgRateAdmit',
  keys: ['gateCurrent', 'gatePrevious', 'current', 'previous'],
  args: { now: 'number', gateWindowMs: 'number', gateLimit: 'number', windowMs: 'number', limit: 'number', expiresIn: 'number' },
  prelude: DECIDE,
  body: `
local gate = decide(gateCurrentKey, gatePreviousKey, now, gateWindowMs, gateLimit, 0, 0)
if gate[1] == 0 then return {1, gate[2], gate[3]} end
local counted = decide(currentKey, previousKey, now, windowMs, limit, 1, expiresIn)
if counted[1] == 0 then return {2, counted[2], counted[3]} end
return {0, counted[2], counted[3]}
`,
});
