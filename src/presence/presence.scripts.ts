/**
 * Lua scripts for the Redis presence store. Each runs atomically on the server, so a session's
 * key, its device record, the expiry index and the user index never disagree, and a heartbeat or
 * a sweep is one round trip. Keys the script derives from stored ids (an old user index) are
 * built from the prefix in ARGV.
 *
 * Layout (prefix `push:` by default):
 *   presence:<deviceId>       string, the current sessionId, PX = remaining presence lifetime
 *   device:<deviceId>         hash: userId platform sessionId instanceId connectedAt
 *                             lastHeartbeatAt expiresAt interval lastSeenAt firstSeenAt
 *                             (no TTL while online, DEVICE_RETENTION after the last session)
 *   presence:expiry           zset deviceId -> expiresAt, what the sweeper reads
 *   user:<userId>:devices     zset deviceId -> lastSeenAt (+inf while online)
 *   net:<network>             hash bucketMs -> samples of stable heartbeat intervals (7 days)
 *   networks                  zset network -> last sample time
 *   instance:<id>             string {"online":n,"lastSeenAt":t,"expiresAt":t}, PX = 3 reports
 *   instances                 set of instance ids (pruned when their key is gone)
 */

const END_SESSION = `
local function end_session(prefix, id, dkey, user, seen, retention)
  redis.call('DEL', prefix .. 'presence:' .. id)
  redis.call('ZREM', prefix .. 'presence:expiry', id)
  redis.call('HDEL', dkey, 'sessionId', 'instanceId', 'connectedAt', 'expiresAt')
  redis.call('HSET', dkey, 'lastSeenAt', seen)
  redis.call('PEXPIRE', dkey, retention)
  local ukey = prefix .. 'user:' .. user .. ':devices'
  redis.call('ZADD', ukey, seen, id)
  if redis.call('ZCOUNT', ukey, '+inf', '+inf') == 0 then redis.call('PEXPIRE', ukey, retention) end
end
`;

/** KEYS: presence, device, expiry, user index. ARGV: deviceId sessionId userId platform instanceId now interval ttl prefix network */
export const CONNECT = `
local id, session, user, platform, instance = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now, ttl = tonumber(ARGV[6]), tonumber(ARGV[8])
local prev = redis.call('HMGET', KEYS[2], 'sessionId', 'userId', 'instanceId')
if prev[2] and prev[2] ~= user then redis.call('ZREM', ARGV[9] .. 'user:' .. prev[2] .. ':devices', id) end
local expires = now + ttl
redis.call('SET', KEYS[1], session, 'PX', ttl)
redis.call('HSET', KEYS[2], 'userId', user, 'sessionId', session, 'instanceId', instance,
  'connectedAt', now, 'lastHeartbeatAt', now, 'expiresAt', expires, 'interval', ARGV[7], 'lastSeenAt', now)
if platform ~= '' then redis.call('HSET', KEYS[2], 'platform', platform) else redis.call('HDEL', KEYS[2], 'platform') end
if ARGV[10] ~= '' then redis.call('HSET', KEYS[2], 'network', ARGV[10]) else redis.call('HDEL', KEYS[2], 'network') end
redis.call('HDEL', KEYS[2], 'appState')
redis.call('HSETNX', KEYS[2], 'firstSeenAt', now)
redis.call('PERSIST', KEYS[2])
redis.call('ZADD', KEYS[3], expires, id)
redis.call('ZADD', KEYS[4], '+inf', id)
redis.call('PERSIST', KEYS[4])
if prev[1] then return {prev[1], prev[2], prev[3]} end
return false
`;

/**
 * KEYS: presence, device, expiry. ARGV: deviceId sessionId now interval ttl appState network
 * sampleBucket prefix networkRetention. A stable-interval sample rides along in the same round trip.
 */
export const HEARTBEAT = `
local now, ttl = tonumber(ARGV[3]), tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[2], 'sessionId', 'expiresAt')
if state[1] ~= ARGV[2] or tonumber(state[2]) <= now then return 0 end
local expires = now + ttl
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
redis.call('HSET', KEYS[2], 'lastHeartbeatAt', now, 'lastSeenAt', now, 'expiresAt', expires, 'interval', ARGV[4])
redis.call('ZADD', KEYS[3], expires, ARGV[1])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[2], 'appState', ARGV[6]) end
if ARGV[7] ~= '' then redis.call('HSET', KEYS[2], 'network', ARGV[7]) end
if ARGV[8] ~= '' and ARGV[7] ~= '' then
  local nkey = ARGV[9] .. 'net:' .. ARGV[7]
  redis.call('HINCRBY', nkey, ARGV[8], 1)
  redis.call('PEXPIRE', nkey, ARGV[10])
  redis.call('ZADD', ARGV[9] .. 'networks', now, ARGV[7])
end
return 1
`;

/** ARGV: prefix now retention then (deviceId sessionId userId)... */
export const DISCONNECT = `${END_SESSION}
local prefix, now, retention = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local ended = 0
for i = 4, #ARGV, 3 do
  local id, session, user = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local dkey = prefix .. 'device:' .. id
  if redis.call('HGET', dkey, 'sessionId') == session then
    end_session(prefix, id, dkey, user, now, retention)
    ended = ended + 1
  end
end
return ended
`;

/** KEYS: expiry. ARGV: prefix now limit retention */
export const CLAIM_EXPIRED = `${END_SESSION}
local prefix, now, retention = ARGV[1], tonumber(ARGV[2]), ARGV[4]
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local claimed = {}
for _, id in ipairs(ids) do
  local dkey = prefix .. 'device:' .. id
  local d = redis.call('HMGET', dkey, 'sessionId', 'userId', 'instanceId', 'expiresAt', 'lastHeartbeatAt')
  if d[1] and tonumber(d[4]) and tonumber(d[4]) > now then
    redis.call('ZADD', KEYS[1], d[4], id)
  elseif d[1] then
    end_session(prefix, id, dkey, d[2], d[5] or now, retention)
    claimed[#claimed + 1] = {id, d[1], d[2], d[3]}
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return claimed
`;

/** KEYS: user index. ARGV: forget-before (ms). Returns the remaining device ids. */
export const USER_DEVICES = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
`;
