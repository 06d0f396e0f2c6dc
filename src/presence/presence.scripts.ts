import { EVENT_LOG_LUA } from '../events/event-log.script';
import { HELD_OFFLINE_REASONS } from '../events/event.types';
import { luaScript } from '../redis/lua-script';

/**
 * Lua scripts for the Redis presence store. Each runs atomically on the server in ONE partition
 * (src/redis/partitions.ts): its first key is in that partition (the Cluster routes the call by
 * it), and every other key it touches is built from `P`, that partition's key prefix, passed as an
 * argument. A device's keys are in the device's partition, a user's keys in the user's partition,
 * so a script never reads or writes another partition's keys (on a Cluster, `#!lua` makes Redis
 * refuse it). On a single Redis there is one partition and P is REDIS_PREFIX itself: the key
 * names below are then exactly the contract's (`push:presence:<deviceId>`).
 *
 * Layout. P(x) = the prefix of x's partition (`push:{<tag>}:` on a Cluster, `push:` otherwise),
 * P(p) = partition p's prefix, C = the control prefix (`push:{ctl}:`, `push:` on one Redis):
 *   P(dev)presence:<deviceId>   string, the current sessionId, PX = remaining presence lifetime
 *   P(dev)device:<deviceId>     hash: userId platform sessionId instanceId connectedAt
 *                               lastHeartbeatAt expiresAt interval lastSeenAt firstSeenAt
 *                               appState network seq eventSeq uv ix (lastSeenAt is written
 *                               when a session ends; while one lives it is lastHeartbeatAt; ix:
 *                               the session's score in presence:expiry; uv:
 *                               the device's user-sync version, see USERS)
 *   P(dev)usq:<deviceId>        string, JSON list: the device's user syncs not applied yet (see
 *                               USERS; a key of its own so the device hash stays a small listpack)
 *                               (no TTL while online, DEVICE_RETENTION after the last session)
 *   P(p)presence:expiry         zset deviceId -> when the partition's sessions are to be looked at,
 *                               whatever instance holds them: what the lease holder sweeps
 *                               (CLAIM_EXPIRED). At or before the session's expiresAt: a heartbeat
 *                               rewrites it only when it could come due before the next beat (see
 *                               heartbeatIndexScore), and the sweep re-scores a session that is
 *                               not over yet (to expiresAt, plus its owner's grace when the owner
 *                               is late)
 *   P(dev)heldoff:<deviceId>    hash userId due ts data: a device.offline held by the grace (see HOLD)
 *   P(p)heldoff:due             zset deviceId -> when its held offline is due
 *   P(p)usersync                zset deviceId -> when its first unapplied user sync was queued
 *                               (the syncs themselves are in `usq:<deviceId>`; see USERS);
 *                               the lease holder replays old ones
 *   P(u)user:<userId>:devices   zset deviceId -> lastSeenAt (+inf while online)
 *   P(u)user:<userId>:held      set of the user's devices whose offline is held
 *   P(u)user:<userId>:ver       hash deviceId -> the last user-sync version applied
 *   P(n)net:<network>           hash bucketMs -> samples of stable heartbeat intervals (7 days)
 *   P(n)netsampled:<network>    zset deviceId -> time of its first sample there (DEVICE_SAMPLE_PERIOD)
 *   P(n)netvotes:<network>      hash deviceId -> the bucket its one sample of the period is in
 *   C networks                  zset network -> last sample time
 *   C instance:<id>             string {"online":n,"lastSeenAt":t,"expiresAt":t,"delay":ms}, PX = 3 reports
 *   C instances                 zset instance id -> lastSeenAt (pruned by age)
 *   C health:<pid>              the readiness probe's write
 *   P(p)events                  stream: the partition's event log for backends (src/events)
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
-- live: JSON {instance: graceMs}: the instances alive now, each with how late it may be in
-- handling its heartbeats.
local function parse_live(s)
  return cjson.decode(s)
end
`;

/**
 * user.* (README "Events for backends"): receivers last heard a user as online while one of its
 * devices is online or has its offline held (user_announced); user.* follow that, once per
 * transition. The user's keys are in the user's partition, not the device's, so the device scripts
 * do not decide user.* themselves: for each change of what the user's view depends on they bump
 * the device's version `uv` and queue a record {u, d, v, s, seen, ts} (state s: online | held |
 * off | gone, gone = the device now belongs to another user) in `usq:<deviceId>` (a JSON list; `P usersync` indexes the devices with queued records by when the first was queued), and
 * return every record queued for the device, in order: older ones another caller has not applied
 * yet too, so when two callers race, whoever applies first applies all of them in order. The
 * caller applies them with USER_SYNC in the user's partition, then dequeues them (USER_SYNC_DONE);
 * the partition's lease holder replays records queued more than a few seconds ago (a caller that
 * died between the two calls). A record whose version is not above the user's `ver` for that
 * device is stale or repeated and changes nothing, so late, repeated and racing syncs converge on
 * each device's latest state and each change of "announced" is recorded once.
 * With one partition (`inline`), every user's keys are in the script's partition: the records are
 * applied at once, in the same script, and none is queued.
 */
const USERS = `
local function user_announced(UP, user)
  return redis.call('ZCOUNT', UP .. 'user:' .. user .. ':devices', '+inf', '+inf') > 0
    or redis.call('SCARD', UP .. 'user:' .. user .. ':held') > 0
end
-- Applies one record in the user's partition UP (the event log is UP's).
-- inline: applied by the device's own script (one partition), so no record can be late or
-- repeated and no version needs keeping.
local function apply_user_sync(UP, r, retention, inline)
  local user, dev, state = r.u, r.d, r.s
  local verKey = UP .. 'user:' .. user .. ':ver'
  if not inline then
    local last = tonumber(redis.call('HGET', verKey, dev))
    if last and tonumber(r.v) <= last then return end
    redis.call('HSET', verKey, dev, r.v)
  end
  local devicesKey = UP .. 'user:' .. user .. ':devices'
  local heldKey = UP .. 'user:' .. user .. ':held'
  local before = user_announced(UP, user)
  if state == 'online' then
    redis.call('ZADD', devicesKey, '+inf', dev)
    redis.call('SREM', heldKey, dev)
  elseif state == 'held' then
    redis.call('ZADD', devicesKey, string.format('%.0f', r.seen), dev)
    redis.call('SADD', heldKey, dev)
  elseif state == 'off' then
    redis.call('ZADD', devicesKey, string.format('%.0f', r.seen), dev)
    redis.call('SREM', heldKey, dev)
  else
    redis.call('ZREM', devicesKey, dev)
    redis.call('SREM', heldKey, dev)
  end
  local after = user_announced(UP, user)
  if after and not before then emit('user.online', { userId = user }, r.ts) end
  if before and not after then emit('user.offline', { userId = user }, r.ts) end
  if redis.call('ZCOUNT', devicesKey, '+inf', '+inf') > 0 then
    redis.call('PERSIST', devicesKey)
    if not inline then redis.call('PERSIST', verKey) end
  else
    redis.call('PEXPIRE', devicesKey, retention)
    if not inline then redis.call('PEXPIRE', verKey, retention) end
  end
  redis.call('PEXPIRE', heldKey, retention)
end
local user_sync = nil
local function sync_init(P, inline, retention)
  user_sync = { P = P, inline = inline == 1, retention = retention, devices = {}, loose = {} }
end
-- A change of what user's view of device dev depends on; seen: the device's lastSeenAt; ts: when
-- it happened (now unless an offline was held).
local function sync_user(dkey, user, dev, state, seen, ts)
  local r = { u = user, d = dev, s = state, seen = tonumber(seen) or event_log.now, ts = ts or event_log.now }
  if user_sync.inline then
    -- Applied here and now: no version to read or keep.
    apply_user_sync(user_sync.P, r, user_sync.retention, true)
    return
  end
  local exists = redis.call('EXISTS', dkey) == 1
  local cur = exists and tonumber(redis.call('HGET', dkey, 'uv')) or 0
  -- Versions never go back, even for a device forgotten and seen again (its hash starts over).
  local uv = string.format('%.0f', math.max(cur + 1, event_log.now * 1024))
  r.v = uv
  if exists then
    -- The queue is a key of its own, not a field of the device hash: a field longer than 64 bytes
    -- would turn the hash from a listpack into a hashtable for good (about 4 times the memory).
    local qkey = user_sync.P .. 'usq:' .. dev
    local queued = redis.call('GET', qkey)
    local list = queued and cjson.decode(queued) or {}
    list[#list + 1] = r
    redis.call('HSET', dkey, 'uv', uv)
    redis.call('SET', qkey, cjson.encode(list), 'PX', user_sync.retention)
    redis.call('ZADD', user_sync.P .. 'usersync', 'NX', event_log.ts, dev)
    if not user_sync.devices[qkey] then
      user_sync.devices[qkey] = true
      user_sync.devices[#user_sync.devices + 1] = qkey
    end
  else
    user_sync.loose[#user_sync.loose + 1] = cjson.encode(r)
  end
end
-- Every sync still queued for the devices this script touched (older ones another caller has not
-- applied yet included: whoever applies first applies them all, in order), then any not queued.
local function queued_syncs(qkeys, out)
  for _, qkey in ipairs(qkeys) do
    local queued = redis.call('GET', qkey)
    if queued then
      for _, r in ipairs(cjson.decode(queued)) do out[#out + 1] = cjson.encode(r) end
    end
  end
  return out
end
local function sync_out()
  local out = queued_syncs(user_sync.devices, {})
  for _, m in ipairs(user_sync.loose) do out[#out + 1] = m end
  return out
end
`;

/**
 * Flap suppression (PRESENCE_EVENT_GRACE_MS): a `device.offline` for a reason in HELD_REASONS is
 * not appended at once. The script that ends the session holds it in Redis instead (never in one
 * process's timer): `heldoff:<deviceId>` keeps the event's data and time, `heldoff:due` indexes it
 * by due time (the end of the grace) for the partition's lease holder to release (PARTITION_TICK),
 * and a `held` user sync keeps the user announced meanwhile. A connect of the same user before it
 * is due drops it and records no online either (a flap); at or after it is due (or for another
 * user) the offline is recorded first, with an `off` user sync.
 */
const HOLD = `
local HELD_REASONS = { ${HELD_OFFLINE_REASONS.map((r) => `${r} = true`).join(', ')} }
local function hold_offline(P, id, user, data, due, retention)
  local key = P .. 'heldoff:' .. id
  redis.call('HSET', key, 'userId', user, 'due', string.format('%.0f', due),
    'ts', event_log.ts, 'data', cjson.encode(data))
  redis.call('PEXPIRE', key, retention)
  redis.call('ZADD', P .. 'heldoff:due', string.format('%.0f', due), id)
end
-- Removes a device's held offline; returns {userId, due, ts, data} or nil.
local function take_held(P, id)
  local key = P .. 'heldoff:' .. id
  local h = redis.call('HMGET', key, 'userId', 'due', 'ts', 'data')
  redis.call('ZREM', P .. 'heldoff:due', id)
  if not h[1] then return nil end
  redis.call('DEL', key)
  return h
end
-- Records a taken held offline with its original data and time, and the user sync that may make
-- it the user's user.offline.
local function release_held(P, h)
  local ts = tonumber(h[3])
  local data = cjson.decode(h[4])
  local dkey = P .. 'device:' .. data.deviceId
  emit_device(dkey, 'device.offline', data, ts)
  sync_user(dkey, h[1], data.deviceId, 'off', data.lastSeenAt, ts)
end
`;

/**
 * `at`: when presence ended (now for a disconnect, expiresAt for a run-out session); a held
 * reason's offline is held until at + grace when that is still ahead.
 */
const END_SESSION = `
local function end_session(P, id, dkey, user, instance, session, seen, retention, reason, at, grace)
  redis.call('DEL', P .. 'presence:' .. id)
  redis.call('ZREM', P .. 'presence:expiry', id)
  redis.call('HDEL', dkey, 'sessionId', 'instanceId', 'connectedAt', 'expiresAt')
  redis.call('HSET', dkey, 'lastSeenAt', seen)
  redis.call('PEXPIRE', dkey, retention)
  local data = { deviceId = id, userId = user, sessionId = session, instanceId = instance,
    reason = reason, lastSeenAt = tonumber(seen), seq = next_seq(dkey) }
  if grace > 0 and HELD_REASONS[reason] and at + grace > event_log.now then
    hold_offline(P, id, user, data, at + grace, retention)
    sync_user(dkey, user, id, 'held', seen)
  else
    emit_device(dkey, 'device.offline', data)
    sync_user(dkey, user, id, 'off', seen)
  end
end
`;

/**
 * Records a new session; returns {replaced session {sessionId, userId, instanceId} or {}, user
 * syncs}. Events, in this order: the device's held offline if it is due or was another user's, the
 * previous session's `device.offline` (`replaced` while it was live; `heartbeat_timeout` when it
 * had run out unswept and its instance is in `live`, `instance_lost` otherwise), `device.online`;
 * user.* follow from the syncs (a user left without devices goes offline, a user's first device
 * brings it online). A flap (the same user back within the grace of a held or run-out offline)
 * records neither that offline nor this online, but both still count in `seq`. The same session
 * recorded again (a retried call) records nothing.
 */
export const CONNECT = luaScript({
  name: 'pgConnect',
  keys: ['presence', 'device', 'expiry'],
  args: {
    P: 'string',
    deviceId: 'string',
    sessionId: 'string',
    userId: 'string',
    platform: 'string?',
    instanceId: 'string',
    now: 'int',
    interval: 'int',
    ttl: 'int',
    network: 'string?',
    retention: 'int',
    eventRetention: 'number',
    eventGrace: 'number',
    live: 'string',
    inline: 'number',
  },
  prelude: EVENTS + USERS + HOLD,
  body: `
events_init(P, now, eventRetention, nowS)
sync_init(P, inline, retentionS)
local alive = parse_live(live)
local prev = redis.call('HMGET', deviceKey, 'sessionId', 'userId', 'instanceId', 'expiresAt', 'lastHeartbeatAt')
local again = prev[1] == sessionId
local flap = false
local held = take_held(P, deviceId)
if held then
  if held[1] == userId and tonumber(held[2]) > now then flap = true else release_held(P, held) end
end
if prev[1] and not again then
  local reason, seen, at = 'replaced', now, now
  if (tonumber(prev[4]) or 0) <= now then
    seen = tonumber(prev[5]) or now
    at = tonumber(prev[4]) or now
    reason = (prev[3] == instanceId or alive[prev[3]]) and 'heartbeat_timeout' or 'instance_lost'
  end
  local data = { deviceId = deviceId, userId = prev[2], sessionId = prev[1], instanceId = prev[3],
    reason = reason, lastSeenAt = seen, seq = next_seq(deviceKey) }
  if reason ~= 'replaced' and eventGrace > 0 and prev[2] == userId and at + eventGrace > now then
    flap = true
  else
    emit_device(deviceKey, 'device.offline', data)
    -- Run out unswept: the user's view still counts it online.
    if reason ~= 'replaced' and prev[2] == userId then sync_user(deviceKey, userId, deviceId, 'off', seen) end
  end
end
if prev[2] and prev[2] ~= userId then sync_user(deviceKey, prev[2], deviceId, 'gone', now) end
-- Times go to commands as strings (the caller's, or made once): see 'int' in src/redis/lua-script.ts.
local expiresS = string.format('%.0f', now + ttl)
redis.call('SET', presenceKey, sessionId, 'PX', ttlS)
redis.call('HSET', deviceKey, 'userId', userId, 'sessionId', sessionId, 'instanceId', instanceId,
  'connectedAt', nowS, 'lastHeartbeatAt', nowS, 'expiresAt', expiresS, 'interval', intervalS, 'lastSeenAt', nowS, 'ix', expiresS)
if platform then redis.call('HSET', deviceKey, 'platform', platform) else redis.call('HDEL', deviceKey, 'platform') end
if network then redis.call('HSET', deviceKey, 'network', network) else redis.call('HDEL', deviceKey, 'network') end
redis.call('HDEL', deviceKey, 'appState')
redis.call('HSETNX', deviceKey, 'firstSeenAt', nowS)
redis.call('PERSIST', deviceKey)
redis.call('ZADD', expiryKey, expiresS, deviceId)
if not again then
  local seq = next_seq(deviceKey)
  if not flap then
    emit_device(deviceKey, 'device.online', { deviceId = deviceId, userId = userId, sessionId = sessionId, instanceId = instanceId,
      platform = platform, network = network, seq = seq })
  end
  sync_user(deviceKey, userId, deviceId, 'online', now)
end
local replaced = {}
if prev[1] then replaced = {prev[1], prev[2], prev[3]} end
return {replaced, sync_out()}
`,
});

/**
 * Extends live sessions of one partition, a batch of heartbeats in one call (RedisPresenceStore
 * collects those that arrive together). After `grace` (how late this instance may be in handling
 * its heartbeats, the batch's largest), ARGV holds from `restAt` on, per heartbeat:
 *   deviceId sessionId now expiresAt ttl index n [field value] x n
 * `expiresAt` is now + ttl, computed by the caller (the script's own Lua work, not its commands,
 * was most of a heartbeat's Redis time: docs/performance.md, fifteenth round). `index` is what the
 * heartbeat does to the session's expiry-index entry (heartbeatIndexScore): '' leaves it, a score
 * moves it there, and '?' says the caller does not know the record to be live (knownLive), so the
 * record is checked first and the entry moved to expiresAt. The n pairs are the record's fields
 * the heartbeat changes besides its times (`interval`, `appState`, `network`; usually none, n = 0:
 * fewer arguments cost Redis less per heartbeat). Returns one number per heartbeat, in order: 1 if
 * its session was extended, 0 if the session is not the device's or already expired.
 * The hot path, a holder that knows its record: one SET of the presence key (XX, GET) both checks
 * that the key still holds the session and extends it; the device hash then gets only what changed
 * (`lastHeartbeatAt` and `expiresAt` always; `interval`, `appState` and `network` when the caller
 * says the record does not hold them yet). No read of the record: in calls of 55, that took Redis
 * 3.6 µs per heartbeat instead of 5.0 (docs/performance.md, sixteenth round). `lastSeenAt` is not
 * written while the session lives: it equals `lastHeartbeatAt` then (see toView), and the
 * session's end writes it. A network sample goes separately (NETWORK_SAMPLE, the network's
 * partition). `route` (the partition's expiry index) routes the call. One script call for many
 * heartbeats costs Redis (and the gateway's client) much less per heartbeat than one call each:
 * the call itself was about 40 % of a heartbeat's Redis CPU (docs/performance.md).
 */
export const HEARTBEAT = luaScript({
  name: 'pgHeartbeat',
  keys: ['route'],
  args: { P: 'string', grace: 'number' },
  rest: 'argv',
  body: `
-- Whether the record still names the session, live or expired less than grace ago: a session
-- this instance has not swept is still its own for that long after it expired.
local function current(deviceKey, sessionId, nowS)
  local state = redis.call('HMGET', deviceKey, 'sessionId', 'expiresAt')
  return state[1] == sessionId and tonumber(state[2]) > tonumber(nowS) - grace
end
-- Times travel as the caller's strings and are written as such: a Lua number passed to a command
-- is formatted with sprintf('%.14g'), which cost about a third of HSET and PEXPIRE's time here.
local function beat(deviceId, sessionId, nowS, expiresS, ttlS, index, changed, from)
  local deviceKey = P .. 'device:' .. deviceId
  local presenceKey = P .. 'presence:' .. deviceId
  if index == '?' then
    if not current(deviceKey, sessionId, nowS) then return 0 end
    -- The key is usually there (only a heartbeat within the grace finds it gone): extending it is cheaper than rewriting it.
    if redis.call('PEXPIRE', presenceKey, ttlS) == 0 then redis.call('SET', presenceKey, sessionId, 'PX', ttlS) end
    index = expiresS
  else
    local held = redis.call('SET', presenceKey, sessionId, 'XX', 'PX', ttlS, 'GET')
    if held ~= sessionId then
      if held then
        -- Another session's key (this one was replaced), just overwritten: put it back as it was.
        -- Its TTL was set from its record's expiresAt, as this one's would have been.
        local expires = tonumber(redis.call('HGET', deviceKey, 'expiresAt')) or 0
        redis.call('SET', presenceKey, held, 'PX', math.max(expires - tonumber(nowS), 1))
        return 0
      end
      -- Gone by Redis's clock, though not by the holder's: the record says whether it is over.
      if not current(deviceKey, sessionId, nowS) then return 0 end
      redis.call('SET', presenceKey, sessionId, 'PX', ttlS)
    end
  end
  if index ~= '' then redis.call('ZADD', routeKey, index, deviceId) end
  if changed == 0 then
    -- The usual beat: no table to build and unpack.
    if index ~= '' then
      redis.call('HSET', deviceKey, 'lastHeartbeatAt', nowS, 'expiresAt', expiresS, 'ix', index)
    else
      redis.call('HSET', deviceKey, 'lastHeartbeatAt', nowS, 'expiresAt', expiresS)
    end
    return 1
  end
  local fields = { 'lastHeartbeatAt', nowS, 'expiresAt', expiresS }
  for k = from, from + 2 * changed - 1 do fields[#fields + 1] = ARGV[k] end
  if index ~= '' then fields[#fields + 1] = 'ix'; fields[#fields + 1] = index end
  redis.call('HSET', deviceKey, unpack(fields))
  return 1
end
local out = {}
local n = 0
local i = restAt
local last = #ARGV
while i <= last do
  local changed = tonumber(ARGV[i + 6])
  n = n + 1
  out[n] = beat(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], changed, i + 7)
  i = i + 7 + 2 * changed
end
return out
`,
});

/**
 * A stable-interval sample (sampleBucket) of a device on `network`, in the network's partition;
 * 1 when it counted. A device has one vote per network and samplePeriod: its first sample casts
 * it, and a longer interval it holds later in the period moves it up (a device climbing 4, 6, 9,
 * 11 s counts once, at 11 s, not four times). The caller also marks the network in `C networks`.
 */
export const NETWORK_SAMPLE = luaScript({
  name: 'pgNetworkSample',
  keys: ['network', 'sampledBy', 'votes'],
  args: { deviceId: 'string', now: 'number', sampleBucket: 'string', networkRetention: 'number', samplePeriod: 'number' },
  body: `
local stale = redis.call('ZRANGEBYSCORE', sampledByKey, '-inf', now - samplePeriod)
for i = 1, #stale, 500 do
  redis.call('HDEL', votesKey, unpack(stale, i, math.min(i + 499, #stale)))
end
if #stale > 0 then redis.call('ZREMRANGEBYSCORE', sampledByKey, '-inf', now - samplePeriod) end
local voted = redis.call('ZSCORE', sampledByKey, deviceId) and tonumber(redis.call('HGET', votesKey, deviceId))
if voted and tonumber(sampleBucket) <= voted then return 0 end
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
return 1
`,
});

/**
 * Ends the named sessions of one partition (rest: deviceId sessionId endedAt, repeated), all with
 * one `reason`; each session's own endedAt is its lastSeenAt, and `now` (the latest of them) dates
 * the call's events. Returns {1 or 0 per session: whether it was current and ended, user syncs}. A
 * session already replaced or ended changes nothing and records nothing. `route` (the partition's
 * expiry index) routes the call.
 */
export const DISCONNECT = luaScript({
  name: 'pgDisconnect',
  keys: ['route'],
  args: { P: 'string', now: 'int', retention: 'int', reason: 'string', eventRetention: 'number', eventGrace: 'number', inline: 'number' },
  rest: true,
  prelude: EVENTS + USERS + HOLD + END_SESSION,
  body: `
events_init(P, now, eventRetention, nowS)
sync_init(P, inline, retentionS)
local ended = {}
for i = 1, #rest, 3 do
  local id, session, at = rest[i], rest[i + 1], rest[i + 2]
  local dkey = P .. 'device:' .. id
  local d = redis.call('HMGET', dkey, 'sessionId', 'instanceId', 'userId')
  if d[1] == session then
    end_session(P, id, dkey, d[3], d[2], session, at, retentionS, reason, tonumber(at), eventGrace)
    ended[#ended + 1] = 1
  else
    ended[#ended + 1] = 0
  end
end
return {ended, sync_out()}
`,
});

/**
 * Ends up to `limit` sessions of the partition whose presence ran out, whoever holds them; returns
 * {{deviceId, sessionId, userId, instanceId} per session, user syncs}. `live` names the instances
 * alive now with their grace (how late each may be in handling its heartbeats): a session of a
 * live owner ends once it is past its TTL by more than that grace (`heartbeat_timeout`), and until
 * then is re-scored past it so it does not block the head of the index; a session whose owner is
 * not in `live` ends at its TTL (`instance_lost`).
 */
export const CLAIM_EXPIRED = luaScript({
  name: 'pgClaimExpired',
  keys: ['expiry'],
  args: { P: 'string', now: 'int', limit: 'number', retention: 'int', eventRetention: 'number', eventGrace: 'number', live: 'string', inline: 'number' },
  prelude: EVENTS + USERS + HOLD + END_SESSION,
  body: `
events_init(P, now, eventRetention, nowS)
sync_init(P, inline, retentionS)
local alive = parse_live(live)
local ids = redis.call('ZRANGEBYSCORE', expiryKey, '-inf', nowS, 'LIMIT', 0, limit)
local claimed = {}
for _, id in ipairs(ids) do
  local dkey = P .. 'device:' .. id
  local d = redis.call('HMGET', dkey, 'sessionId', 'userId', 'instanceId', 'expiresAt', 'lastHeartbeatAt')
  local expires = tonumber(d[4])
  if not d[1] or not expires then
    redis.call('ZREM', expiryKey, id)
  else
    local grace = alive[d[3]]
    if expires > now - (grace or 0) then
      local score = string.format('%.0f', expires + (grace or 0))
      redis.call('ZADD', expiryKey, score, id)
      redis.call('HSET', dkey, 'ix', score)
    else
      end_session(P, id, dkey, d[2], d[3], d[1], d[5] or nowS, retentionS, grace and 'heartbeat_timeout' or 'instance_lost', expires, eventGrace)
      claimed[#claimed + 1] = {id, d[1], d[2], d[3]}
    end
  end
end
return {claimed, sync_out()}
`,
});

/**
 * The partition's periodic step, run by its lease holder: records up to `limit` held offlines
 * whose grace ended at or before `now` (each taken and recorded in one step, so racing holders
 * during a handover record it once), and returns the user syncs queued before `repairBefore` that
 * nobody applied (their caller died between the two calls) for the holder to replay. Returns
 * {released, new user syncs, old user syncs}. (The event floor is EventFloorsService's, src/events.)
 */
export const PARTITION_TICK = luaScript({
  name: 'pgPartitionTick',
  keys: ['due'],
  args: { P: 'string', now: 'number', limit: 'number', retention: 'number', eventRetention: 'number', inline: 'number', repairBefore: 'number', repairLimit: 'number' },
  prelude: EVENTS + USERS + HOLD,
  body: `
events_init(P, now, eventRetention)
sync_init(P, inline, retention)
local ids = redis.call('ZRANGEBYSCORE', dueKey, '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(ids) do
  local held = take_held(P, id)
  if held then release_held(P, held) end
end
local stale = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'usersync', '-inf', repairBefore, 'LIMIT', 0, repairLimit)) do
  local qkey = P .. 'usq:' .. id
  if redis.call('EXISTS', qkey) == 1 then stale[#stale + 1] = qkey else redis.call('ZREM', P .. 'usersync', id) end
end
return {#ids, sync_out(), queued_syncs(stale, {})}
`,
});

/**
 * Applies user syncs (rest: records as the device scripts queued them, in order) in the user's
 * partition: see USERS. `route` (the partition's usersync index) routes the call.
 */
export const USER_SYNC = luaScript({
  name: 'pgUserSync',
  keys: ['route'],
  args: { P: 'string', now: 'number', retention: 'number', eventRetention: 'number' },
  rest: true,
  prelude: EVENTS + USERS,
  body: `
events_init(P, now, eventRetention)
for _, m in ipairs(rest) do apply_user_sync(P, cjson.decode(m), retention) end
return #rest
`,
});

/**
 * Dequeues applied user syncs (rest: deviceId, highest version applied, repeated) from the device
 * hashes of partition P; a device with none left leaves `P usersync`.
 */
export const USER_SYNC_DONE = luaScript({
  name: 'pgUserSyncDone',
  keys: ['queue'],
  args: { P: 'string' },
  rest: true,
  body: `
for i = 1, #rest, 2 do
  local id, upto = rest[i], tonumber(rest[i + 1])
  local qkey = P .. 'usq:' .. id
  local queued = redis.call('GET', qkey)
  local left = {}
  if queued then
    for _, r in ipairs(cjson.decode(queued)) do
      if tonumber(r.v) > upto then left[#left + 1] = r end
    end
  end
  if #left > 0 then
    redis.call('SET', qkey, cjson.encode(left), 'KEEPTTL')
  else
    redis.call('DEL', qkey)
    redis.call('ZREM', queueKey, id)
  end
end
return 0
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
