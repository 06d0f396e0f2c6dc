import { luaScript } from '../../redis/lua-script';

/**
 * Lua scripts of the Redis webhook queue. Each is one atomic step, so an instance killed between
 * any two of them leaves a state another instance continues from; the worst outcome is a resend.
 *
 * Layout per URL and lease group g (`G(g)wh:<hash of the URL>:`, G(g) = the key prefix of the
 * group's first partition, `<prefix>` itself with one partition; all PX = retry window + event
 * retention, refreshed by writes, so a URL taken out of the configuration leaves nothing behind):
 *   cursors   hash p -> the last entry of partition p's stream copied (p in the group)
 *   q:<key>   list: "<event id> <body>" in stream order, one per ordering key (device or user);
 *             a key's events all come from one partition (its device's or user's), so one group
 *   ready     zset key -> when it may be taken (now; a retry time; a claim's lease end)
 *   heads     zset key -> time of its oldest queued event (the backlog age)
 *   claims    hash key -> token of the instance attempting its head event
 *   tries     hash key -> failed attempts of its head event
 * and `<control>wh:<hash>:disabled` (string: set by a 410 on any instance, removed when an
 * instance starts), read by the dispatchers outside the scripts. Keys of one group are built from
 * `qbase`/KEYS with the same prefix, so on a Cluster they share the group's slot.
 */

/**
 * Copies a batch of partition p's events (rest: key, ms, member triples) in stream order and moves
 * p's cursor to `position`, if the cursor is still at `expected` (else another instance copied
 * them already, a lease handover: 0, nothing written). Exactly-once copy without an intake lock.
 */
export const ENQUEUE = luaScript({
  name: 'whEnqueue',
  keys: ['cursors', 'ready', 'heads'],
  args: { p: 'string', expected: 'string', position: 'string', now: 'number', ttl: 'number', qbase: 'string' },
  rest: true,
  body: `
if redis.call('HGET', cursorsKey, p) ~= expected then return 0 end
for i = 1, #rest, 3 do
  local k, q = rest[i], qbase .. rest[i]
  if redis.call('RPUSH', q, rest[i + 2]) == 1 then redis.call('ZADD', headsKey, rest[i + 1], k) end
  redis.call('PEXPIRE', q, ttl)
  -- NX: a key waiting for a retry, or taken, keeps its time
  redis.call('ZADD', readyKey, 'NX', now, k)
end
redis.call('HSET', cursorsKey, p, position)
redis.call('PEXPIRE', cursorsKey, ttl)
if #rest > 0 then
  redis.call('PEXPIRE', readyKey, ttl)
  redis.call('PEXPIRE', headsKey, ttl)
end
return 1
`,
});

/**
 * Partition p's cursor, stored first when there is none: as the single-stream cursor of a queue
 * from before partitioning (\`legacy\`, same group with one partition), else as \`start\` (the
 * stream's newest entry, read just before: a URL seen for the first time gets what follows).
 */
export const CURSOR = luaScript({
  name: 'whCursor',
  keys: ['cursors', 'legacy'],
  args: { p: 'string', start: 'string', ttl: 'number' },
  body: `
local position = redis.call('HGET', cursorsKey, p)
if position then return position end
position = redis.call('GET', legacyKey) or start
redis.call('HSET', cursorsKey, p, position)
redis.call('PEXPIRE', cursorsKey, ttl)
return position
`,
});

/**
 * Takes up to `max` due keys of the group: each gets a token and is due again at `leaseUntil`
 * (so it is taken again if this instance dies). Keys whose queue is gone are cleaned up.
 * Returns {{key, token, head, tries, ...}, next due score or false}.
 */
export const CLAIM = luaScript({
  name: 'whClaim',
  keys: ['ready', 'heads', 'claims', 'tries'],
  args: { tokenBase: 'string', now: 'number', max: 'number', leaseUntil: 'number', qbase: 'string', ttl: 'number' },
  body: `
local out = {}
for i, k in ipairs(redis.call('ZRANGEBYSCORE', readyKey, '-inf', now, 'LIMIT', 0, max)) do
  local head = redis.call('LINDEX', qbase .. k, 0)
  if head then
    local token = tokenBase .. ':' .. i
    redis.call('HSET', claimsKey, k, token)
    redis.call('ZADD', readyKey, leaseUntil, k)
    out[#out + 1] = k
    out[#out + 1] = token
    out[#out + 1] = head
    out[#out + 1] = redis.call('HGET', triesKey, k) or '0'
  else
    redis.call('ZREM', readyKey, k)
    redis.call('ZREM', headsKey, k)
    redis.call('HDEL', claimsKey, k)
    redis.call('HDEL', triesKey, k)
  end
end
if #out > 0 then redis.call('PEXPIRE', claimsKey, ttl) end
local first = redis.call('ZRANGE', readyKey, 0, 0, 'WITHSCORES')
return {out, first[2] or false}
`,
});

/** Extends the lease of claims (rest: key, token pairs) still held by their token. */
export const RENEW = luaScript({
  name: 'whRenew',
  keys: ['ready', 'claims'],
  args: { leaseUntil: 'number' },
  rest: true,
  body: `
for i = 1, #rest, 2 do
  if redis.call('HGET', claimsKey, rest[i]) == rest[i + 1] then redis.call('ZADD', readyKey, 'XX', leaseUntil, rest[i]) end
end
return 1
`,
});

/**
 * Applies outcomes (rest: key, token, id, kind, at, tries sextuples) of claims still held:
 * 'done' removes the head and makes the key due now if more is queued; 'retry' keeps the head
 * and makes the key due at \`at\`. A claim taken over by another instance is left alone.
 */
export const SETTLE = luaScript({
  name: 'whSettle',
  keys: ['ready', 'heads', 'claims', 'tries'],
  args: { now: 'number', qbase: 'string', ttl: 'number' },
  rest: true,
  body: `
for i = 1, #rest, 6 do
  local k, token, id, kind = rest[i], rest[i + 1], rest[i + 2], rest[i + 3]
  if redis.call('HGET', claimsKey, k) == token then
    redis.call('HDEL', claimsKey, k)
    local q = qbase .. k
    local head = redis.call('LINDEX', q, 0)
    if head and string.sub(head, 1, #id + 1) == id .. ' ' then
      if kind == 'retry' then
        redis.call('HSET', triesKey, k, rest[i + 5])
        redis.call('PEXPIRE', triesKey, ttl)
        redis.call('ZADD', readyKey, rest[i + 4], k)
      else
        redis.call('LPOP', q)
        redis.call('HDEL', triesKey, k)
        local after = redis.call('LINDEX', q, 0)
        if after then
          redis.call('ZADD', readyKey, now, k)
          redis.call('ZADD', headsKey, string.match(after, '^(%d+)'), k)
        else
          redis.call('ZREM', readyKey, k)
          redis.call('ZREM', headsKey, k)
        end
      end
    else
      redis.call('ZADD', readyKey, now, k)
    end
  end
end
return 1
`,
});
