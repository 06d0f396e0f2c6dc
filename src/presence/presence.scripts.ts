import { EVENT_LOG_LUA } from '../events/event-log.script';
import { HELD_OFFLINE_REASONS } from '../events/event.types';
import { luaScript } from '../redis/lua-script';

/**
 * Lua scripts for the Redis presence store. Each runs atomically on the server, so a session's
 * key, its device record, the expiry index and the user index never disagree, and a heartbeat or
 * a sweep is one round trip. Keys the script derives from stored ids (an old user index) are
 * built from the prefix it is given.
 *
 * Layout (prefix `push:` by default):
 *   presence:<deviceId>       string, the current sessionId, PX = remaining presence lifetime
 *   device:<deviceId>         hash: userId platform sessionId instanceId connectedAt
 *                             lastHeartbeatAt expiresAt interval lastSeenAt firstSeenAt
 *                             appState network seq eventSeq (lastSeenAt is written when a
 *                             session ends; while one lives it is lastHeartbeatAt)
 *                             (no TTL while online, DEVICE_RETENTION after the last session)
 *   presence:expiry:<inst>    zset deviceId -> expiresAt of the sessions held by instance <inst>:
 *                             what that instance's sweeper reads (another instance's sweeper
 *                             only once <inst> stopped reporting itself alive)
 *   user:<userId>:devices     zset deviceId -> lastSeenAt (+inf while online)
 *   net:<network>             hash bucketMs -> samples of stable heartbeat intervals (7 days)
 *   networks                  zset network -> last sample time
 *   netsampled:<network>      zset deviceId -> time of its first sample there (DEVICE_SAMPLE_PERIOD)
 *   netvotes:<network>        hash deviceId -> the bucket its one sample of the period is in
 *   instance:<id>             string {"online":n,"lastSeenAt":t,"expiresAt":t}, PX = 3 reports
 *   instances                 set of instance ids (one leaves once its key is gone and it holds
 *                             no session any more)
 *   events                    stream: the event log for backends (see EVENTS below); entry id =
 *                             event id, fields type, ts, data (JSON); trimmed to EVENT_RETENTION
 *   heldoff:<deviceId>        hash userId due ts data: a device.offline held by the grace (see HOLD)
 *   heldoff:due               zset deviceId -> when its held offline is due
 *   user:<userId>:held        set of the user's devices whose offline is held
 * The device hash also holds `seq`, the number of presence changes the device has had, and
 * `eventSeq`, the seq of its last recorded event (see EVENTS).
 */

/**
 * The event log's emit (see EVENT_LOG_LUA), and seq: HINCRBY of the device hash's `seq` (every
 * presence change) in the same script. `emit_device` also keeps `eventSeq`, the seq of the
 * device's last recorded event (what GET /v1/devices shows): behind `seq` while an offline is held
 * or after a suppressed flap.
 */
const EVENTS = `${EVENT_LOG_LUA}
local function next_seq(dkey)
  return redis.call('HINCRBY', dkey, 'seq', 1)
end
local function emit_device(dkey, etype, data, ts)
  emit(etype, data, ts)
  if redis.call('EXISTS', dkey) == 1 then redis.call('HSET', dkey, 'eventSeq', data.seq) end
end
`;

/**
 * Flap suppression (PRESENCE_EVENT_GRACE_MS): a `device.offline` for a reason in HELD_REASONS is
 * not appended at once. The script that ends the session holds it in Redis instead (never in one
 * process's timer): `heldoff:<deviceId>` keeps the event's data and time, `heldoff:due` indexes it
 * by due time (the end of the grace) for whichever instance releases it, and
 * `user:<userId>:held` lists the user's devices whose offline is held. A connect of the same user
 * before it is due drops it and records no online either (a flap); at or after it is due (or for
 * another user) the offline is recorded first. Receivers last heard a user as online while one of
 * its devices is online or has its offline held (user_announced): user.* follow that, so they
 * alternate once per transition as receivers see it.
 */
const HOLD = `
local HELD_REASONS = { ${HELD_OFFLINE_REASONS.map((r) => `${r} = true`).join(', ')} }
local function user_held_key(prefix, user)
  return prefix .. 'user:' .. user .. ':held'
end
local function user_announced(prefix, user)
  return redis.call('ZCOUNT', prefix .. 'user:' .. user .. ':devices', '+inf', '+inf') > 0
    or redis.call('SCARD', user_held_key(prefix, user)) > 0
end
local function hold_offline(prefix, id, user, data, due, retention)
  local key = prefix .. 'heldoff:' .. id
  redis.call('HSET', key, 'userId', user, 'due', string.format('%.0f', due),
    'ts', string.format('%.0f', event_log.now), 'data', cjson.encode(data))
  redis.call('PEXPIRE', key, retention)
  redis.call('ZADD', prefix .. 'heldoff:due', string.format('%.0f', due), id)
  redis.call('SADD', user_held_key(prefix, user), id)
  redis.call('PEXPIRE', user_held_key(prefix, user), retention)
end
-- Removes a device's held offline; returns {userId, due, ts, data} or nil.
local function take_held(prefix, id)
  local key = prefix .. 'heldoff:' .. id
  local h = redis.call('HMGET', key, 'userId', 'due', 'ts', 'data')
  redis.call('ZREM', prefix .. 'heldoff:due', id)
  if not h[1] then return nil end
  redis.call('DEL', key)
  redis.call('SREM', user_held_key(prefix, h[1]), id)
  return h
end
-- Records a taken held offline with its original data and time, and user.offline if that was the
-- user's last device receivers knew as online.
local function release_held(prefix, h)
  local ts = tonumber(h[3])
  local data = cjson.decode(h[4])
  emit_device(prefix .. 'device:' .. data.deviceId, 'device.offline', data, ts)
  if not user_announced(prefix, h[1]) then emit('user.offline', { userId = h[1] }, ts) end
end
`;

/**
 * `at`: when presence ended (now for a disconnect, expiresAt for a run-out session); a held
 * reason's offline is held until at + grace when that is still ahead.
 */
const END_SESSION = `
local function end_session(prefix, id, dkey, user, instance, session, seen, retention, reason, at, grace)
  redis.call('DEL', prefix .. 'presence:' .. id)
  redis.call('ZREM', prefix .. 'presence:expiry:' .. instance, id)
  redis.call('HDEL', dkey, 'sessionId', 'instanceId', 'connectedAt', 'expiresAt')
  redis.call('HSET', dkey, 'lastSeenAt', seen)
  redis.call('PEXPIRE', dkey, retention)
  local data = { deviceId = id, userId = user, sessionId = session, instanceId = instance,
    reason = reason, lastSeenAt = tonumber(seen), seq = next_seq(dkey) }
  local ukey = prefix .. 'user:' .. user .. ':devices'
  redis.call('ZADD', ukey, seen, id)
  if redis.call('ZCOUNT', ukey, '+inf', '+inf') == 0 then redis.call('PEXPIRE', ukey, retention) end
  if grace > 0 and HELD_REASONS[reason] and at + grace > event_log.now then
    hold_offline(prefix, id, user, data, at + grace, retention)
  else
    emit_device(dkey, 'device.offline', data)
    if not user_announced(prefix, user) then emit('user.offline', { userId = user }) end
  end
end
`;

/**
 * Records a new session; returns the replaced session {sessionId, userId, instanceId} or nil.
 * Events, in this order: the device's held offline if it is due or was another user's, the
 * previous session's `device.offline` (`replaced` while it was live; `heartbeat_timeout` /
 * `instance_lost` when it had run out unswept), `user.offline` of a user left without devices,
 * `device.online`, and `user.online` when no other device of the user was online (as receivers
 * know it). A flap (the same user back within the grace of a held or run-out offline) records
 * neither that offline nor this online, but both still count in `seq`. The same session recorded
 * again (a retried call) records nothing.
 */
export const CONNECT = luaScript({
  name: 'pgConnect',
  keys: ['presence', 'device', 'expiry', 'user', 'instances'],
  args: {
    prefix: 'string',
    deviceId: 'string',
    sessionId: 'string',
    userId: 'string',
    platform: 'string?',
    instanceId: 'string',
    now: 'number',
    interval: 'number',
    ttl: 'number',
    network: 'string?',
    retention: 'number',
    eventRetention: 'number',
    eventGrace: 'number',
  },
  prelude: EVENTS + HOLD,
  body: `
events_init(prefix, now, eventRetention)
local prev = redis.call('HMGET', deviceKey, 'sessionId', 'userId', 'instanceId', 'expiresAt', 'lastHeartbeatAt')
local again = prev[1] == sessionId
local flap = false
local held = take_held(prefix, deviceId)
if held then
  if held[1] == userId and tonumber(held[2]) > now then flap = true else release_held(prefix, held) end
end
if prev[1] and not again then
  local reason, seen, at = 'replaced', now, now
  if (tonumber(prev[4]) or 0) <= now then
    seen = tonumber(prev[5]) or now
    at = tonumber(prev[4]) or now
    reason = redis.call('EXISTS', prefix .. 'instance:' .. prev[3]) == 1 and 'heartbeat_timeout' or 'instance_lost'
  end
  local data = { deviceId = deviceId, userId = prev[2], sessionId = prev[1], instanceId = prev[3],
    reason = reason, lastSeenAt = seen, seq = next_seq(deviceKey) }
  if reason ~= 'replaced' and eventGrace > 0 and prev[2] == userId and at + eventGrace > now then
    flap = true
  else
    emit_device(deviceKey, 'device.offline', data)
    if reason ~= 'replaced' then
      -- Run out unswept: the user's index still counts it online.
      redis.call('ZADD', prefix .. 'user:' .. prev[2] .. ':devices', seen, deviceId)
      if prev[2] == userId and not user_announced(prefix, userId) then emit('user.offline', { userId = userId }) end
    end
  end
end
if prev[2] and prev[2] ~= userId then
  local oldUserKey = prefix .. 'user:' .. prev[2] .. ':devices'
  redis.call('ZREM', oldUserKey, deviceId)
  if prev[1] then
    if redis.call('ZCOUNT', oldUserKey, '+inf', '+inf') == 0 then redis.call('PEXPIRE', oldUserKey, retention) end
    if not user_announced(prefix, prev[2]) then emit('user.offline', { userId = prev[2] }) end
  end
end
if prev[1] and prev[3] and prev[3] ~= instanceId then redis.call('ZREM', prefix .. 'presence:expiry:' .. prev[3], deviceId) end
redis.call('SADD', instancesKey, instanceId)
local expires = now + ttl
redis.call('SET', presenceKey, sessionId, 'PX', ttl)
redis.call('HSET', deviceKey, 'userId', userId, 'sessionId', sessionId, 'instanceId', instanceId,
  'connectedAt', now, 'lastHeartbeatAt', now, 'expiresAt', expires, 'interval', interval, 'lastSeenAt', now)
if platform then redis.call('HSET', deviceKey, 'platform', platform) else redis.call('HDEL', deviceKey, 'platform') end
if network then redis.call('HSET', deviceKey, 'network', network) else redis.call('HDEL', deviceKey, 'network') end
redis.call('HDEL', deviceKey, 'appState')
redis.call('HSETNX', deviceKey, 'firstSeenAt', now)
redis.call('PERSIST', deviceKey)
redis.call('ZADD', expiryKey, expires, deviceId)
local firstOfUser = not user_announced(prefix, userId)
redis.call('ZADD', userKey, '+inf', deviceId)
redis.call('PERSIST', userKey)
if not again then
  local seq = next_seq(deviceKey)
  if not flap then
    emit_device(deviceKey, 'device.online', { deviceId = deviceId, userId = userId, sessionId = sessionId, instanceId = instanceId,
      platform = platform, network = network, seq = seq })
    if firstOfUser then emit('user.online', { userId = userId }) end
  end
end
if prev[1] then return {prev[1], prev[2], prev[3]} end
return false
`,
});

/**
 * Extends a live session (held by the instance whose `expiry` index it is); 1 if it was, 0 if the
 * session is not the device's or already expired. The hot path: three keys, and the device hash
 * gets only what changed (`lastHeartbeatAt` and `expiresAt` always; `interval`, `appState` and
 * `network` when they differ from what it holds). `lastSeenAt` is not written while the session
 * lives: it equals `lastHeartbeatAt` then (see toView), and the session's end writes it.
 * Heartbeats that carry a network sample go through HEARTBEAT_SAMPLE instead, which does the same
 * and records the sample in the same round trip.
 */
const BEAT = `
local state = redis.call('HMGET', deviceKey, 'sessionId', 'expiresAt', 'interval', 'appState', 'network')
-- grace: how late this instance may be in handling heartbeats (its own queueing); a session it has
-- not swept is still its own for that long.
if state[1] ~= sessionId or tonumber(state[2]) <= now - grace then return 0 end
local expires = now + ttl
-- The key is usually there (only a heartbeat within the grace finds it gone): extending it is cheaper than rewriting it.
if redis.call('PEXPIRE', presenceKey, ttl) == 0 then redis.call('SET', presenceKey, sessionId, 'PX', ttl) end
local fields = { 'lastHeartbeatAt', now, 'expiresAt', expires }
if tonumber(state[3]) ~= interval then fields[#fields + 1] = 'interval'; fields[#fields + 1] = interval end
if appState and state[4] ~= appState then fields[#fields + 1] = 'appState'; fields[#fields + 1] = appState end
if network and state[5] ~= network then fields[#fields + 1] = 'network'; fields[#fields + 1] = network end
redis.call('HSET', deviceKey, unpack(fields))
redis.call('ZADD', expiryKey, expires, deviceId)
`;

export const HEARTBEAT = luaScript({
  name: 'pgHeartbeat',
  keys: ['presence', 'device', 'expiry'],
  args: {
    deviceId: 'string',
    sessionId: 'string',
    now: 'number',
    interval: 'number',
    ttl: 'number',
    grace: 'number',
    appState: 'string?',
    network: 'string?',
  },
  body: `${BEAT}
return 1
`,
});

/**
 * HEARTBEAT plus a stable-interval sample (sampleBucket) for `network`. A device has one vote per
 * network and samplePeriod: its first sample casts it, and a longer interval it holds later in the
 * period moves it up (a device climbing 4, 6, 9, 11 s counts once, at 11 s, not four times).
 */
export const HEARTBEAT_SAMPLE = luaScript({
  name: 'pgHeartbeatSample',
  keys: ['presence', 'device', 'expiry', 'network', 'networks', 'sampledBy', 'votes'],
  args: {
    deviceId: 'string',
    sessionId: 'string',
    now: 'number',
    interval: 'number',
    ttl: 'number',
    grace: 'number',
    appState: 'string?',
    network: 'string',
    sampleBucket: 'string',
    networkRetention: 'number',
    samplePeriod: 'number',
  },
  body: `${BEAT}
local stale = redis.call('ZRANGEBYSCORE', sampledByKey, '-inf', now - samplePeriod)
for i = 1, #stale, 500 do
  redis.call('HDEL', votesKey, unpack(stale, i, math.min(i + 499, #stale)))
end
if #stale > 0 then redis.call('ZREMRANGEBYSCORE', sampledByKey, '-inf', now - samplePeriod) end
local voted = redis.call('ZSCORE', sampledByKey, deviceId) and tonumber(redis.call('HGET', votesKey, deviceId))
if not voted or tonumber(sampleBucket) > voted then
  if voted then
    if redis.call('HINCRBY', networkKey, voted, -1) <= 0 then redis.call('HDEL', networkKey, voted) end
  else
    redis.call('ZADD', sampledByKey, now, deviceId)
  end
  redis.call('HSET', votesKey, deviceId, sampleBucket)
  redis.call('PEXPIRE', sampledByKey, samplePeriod)
  redis.call('PEXPIRE', votesKey, samplePeriod)
  redis.call('HINCRBY', networkKey, sampleBucket, 1)
  redis.call('PEXPIRE', networkKey, networkRetention)
  redis.call('ZADD', networksKey, now, network)
end
return 1
`,
});

/**
 * Ends the named sessions (rest: deviceId sessionId, repeated) with one `reason`; returns how many
 * were current. A session already replaced or ended changes nothing and records nothing.
 * `route` (a key under the prefix) is never read: a Cluster sends a script to the master of its keys,
 * and one without keys to any master, which 2 times in 3 was not the one holding the sessions
 * (found by `npm run simulate -- --cluster`).
 */
export const DISCONNECT = luaScript({
  name: 'pgDisconnect',
  keys: ['route'],
  args: { prefix: 'string', now: 'number', retention: 'number', reason: 'string', eventRetention: 'number', eventGrace: 'number' },
  rest: true,
  prelude: EVENTS + HOLD + END_SESSION,
  body: `
events_init(prefix, now, eventRetention)
local ended = 0
for i = 1, #rest, 2 do
  local id, session = rest[i], rest[i + 1]
  local dkey = prefix .. 'device:' .. id
  local d = redis.call('HMGET', dkey, 'sessionId', 'instanceId', 'userId')
  if d[1] == session then
    end_session(prefix, id, dkey, d[3], d[2], session, now, retention, reason, now, eventGrace)
    ended = ended + 1
  end
end
return ended
`,
});

/**
 * Ends up to `limit` sessions of instance `owner` that expired at or before `now`; returns
 * {deviceId, sessionId, userId} for each. Their `device.offline` says `instance_lost` when the
 * owner stopped reporting itself alive (its instance key is gone) and someone else sweeps,
 * `heartbeat_timeout` otherwise.
 * An owner that is gone and holds no session any more leaves the instance set.
 */
export const CLAIM_EXPIRED = luaScript({
  name: 'pgClaimExpired',
  keys: ['expiry', 'instance', 'instances'],
  args: {
    prefix: 'string',
    owner: 'string',
    now: 'number',
    limit: 'number',
    retention: 'number',
    eventRetention: 'number',
    own: 'string',
    eventGrace: 'number',
  },
  prelude: EVENTS + HOLD + END_SESSION,
  body: `
events_init(prefix, now, eventRetention)
local ids = redis.call('ZRANGEBYSCORE', expiryKey, '-inf', now, 'LIMIT', 0, limit)
local claimed = {}
-- An owner sweeping its own sessions is alive, even if a stall let its liveness key lapse.
local reason = (own == '1' or redis.call('EXISTS', instanceKey) == 1) and 'heartbeat_timeout' or 'instance_lost'
for _, id in ipairs(ids) do
  local dkey = prefix .. 'device:' .. id
  local d = redis.call('HMGET', dkey, 'sessionId', 'userId', 'instanceId', 'expiresAt', 'lastHeartbeatAt')
  if d[1] and d[3] == owner and tonumber(d[4]) and tonumber(d[4]) > now then
    redis.call('ZADD', expiryKey, d[4], id)
  elseif d[1] and d[3] == owner then
    end_session(prefix, id, dkey, d[2], owner, d[1], d[5] or now, retention, reason, tonumber(d[4]), eventGrace)
    claimed[#claimed + 1] = {id, d[1], d[2]}
  else
    redis.call('ZREM', expiryKey, id)
  end
end
if redis.call('EXISTS', instanceKey) == 0 and redis.call('ZCARD', expiryKey) == 0 then
  redis.call('SREM', instancesKey, owner)
end
return claimed
`,
});

/**
 * Records up to `limit` held offlines whose grace ended at or before `now` (any instance may: the
 * held events of a dead one are released by the others); returns how many it took. Each is taken
 * and recorded in one step, so racing instances record it once. Costs time in the number due.
 */
export const RELEASE_HELD = luaScript({
  name: 'pgReleaseHeld',
  keys: ['due'],
  args: { prefix: 'string', now: 'number', limit: 'number', eventRetention: 'number' },
  prelude: EVENTS + HOLD,
  body: `
events_init(prefix, now, eventRetention)
local ids = redis.call('ZRANGEBYSCORE', dueKey, '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(ids) do
  local held = take_held(prefix, id)
  if held then release_held(prefix, held) end
end
return #ids
`,
});

/** Instances in the set whose key is gone (they stopped reporting): their sessions are anybody's to sweep. */
export const ORPHANED_OWNERS = luaScript({
  name: 'pgOrphanedOwners',
  keys: ['instances'],
  args: { prefix: 'string' },
  body: `
local gone = {}
for _, id in ipairs(redis.call('SMEMBERS', instancesKey)) do
  if redis.call('EXISTS', prefix .. 'instance:' .. id) == 0 then gone[#gone + 1] = id end
end
return gone
`,
});

/** Sessions whose presence runs out after `now`, over every instance. */
export const COUNT_ONLINE = luaScript({
  name: 'pgCountOnline',
  keys: ['instances'],
  args: { prefix: 'string', now: 'number' },
  body: `
local online = 0
for _, id in ipairs(redis.call('SMEMBERS', instancesKey)) do
  online = online + redis.call('ZCOUNT', prefix .. 'presence:expiry:' .. id, '(' .. now, '+inf')
end
return online
`,
});

/** Forgets devices last seen before `forgetBefore`; returns the remaining device ids. */
export const USER_DEVICES = luaScript({
  name: 'pgUserDevices',
  keys: ['user'],
  args: { forgetBefore: 'number' },
  body: `
redis.call('ZREMRANGEBYSCORE', userKey, '-inf', '(' .. forgetBefore)
return redis.call('ZRANGE', userKey, 0, -1)
`,
});

/** A network's histogram as a flat {bucket, count, ...} list; empty once nobody sampled it since `sampledAfter`. */
export const NETWORK_HISTOGRAM = luaScript({
  name: 'pgNetworkHistogram',
  keys: ['network', 'networks'],
  args: { network: 'string', sampledAfter: 'number' },
  body: `
local last = tonumber(redis.call('ZSCORE', networksKey, network))
if not last or last <= sampledAfter then return {} end
return redis.call('HGETALL', networkKey)
`,
});
