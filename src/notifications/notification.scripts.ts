/**
 * Lua scripts for the Redis notification store. A publish is one script: the idempotency record,
 * the notification, every target's status and every inbox entry are written together or not at
 * all, so a 202 never stands for half a notification. Keys derived from ids use the prefix in ARGV.
 *
 * Layout (prefix `push:` by default):
 *   notif:<id>                hash: payload (JSON), createdAt, expiresAt (effective), and one
 *                             field per target `t:<deviceId>` = "status:updatedAt[:reason]";
 *                             PX = until NOTIFICATION_RETENTION after the last target can settle
 *   notif:seq                 counter; inbox order (oldest first) follows it
 *   inbox:<deviceId>          zset notificationId -> seq, the device's pending notifications
 *   inbox:<deviceId>:collapse hash collapseKey -> notificationId pending with that key
 *   idem:<apiKey>:<key>       string: {"fingerprint":..,"answer":..}, PX = IDEMPOTENCY window
 * Presence (device:<deviceId>) is read to decide who is online at the instant of the write.
 */

/**
 * KEYS: notif, seq, idempotency key (a placeholder in the same hash slot when there is none: a
 * Cluster routes a script by its keys, so even an unused key must not point elsewhere).
 * ARGV: prefix id payload createdAt effectiveExpiresAt notifPx collapseKey maxInbox keepOffline(1/0)
 *       now fingerprint idemPx, then the target deviceIds.
 * Returns {'replay', answer} | {'conflict'} | {'ok', answer, onlineIds, evictions}
 * where evictions is a flat list of evicted notification ids.
 */
export const PUBLISH = `
local prefix, id, payload = ARGV[1], ARGV[2], ARGV[3]
local createdAt, expires, notifPx = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local collapse, maxInbox, keepOffline, now = ARGV[7], tonumber(ARGV[8]), ARGV[9] == '1', tonumber(ARGV[10])
local fingerprint, idemPx = ARGV[11], tonumber(ARGV[12])

local idempotent = fingerprint ~= ''
if idempotent then
  local prev = redis.call('GET', KEYS[3])
  if prev then
    local record = cjson.decode(prev)
    if record.fingerprint ~= fingerprint then return {'conflict'} end
    return {'replay', record.answer}
  end
end

local seq = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'payload', payload, 'createdAt', createdAt, 'expiresAt', expires, 'forgetAt', now + notifPx)
local online, queued, onlineIds, evicted = 0, 0, {}, {}
local inboxPx = expires - now
for i = 13, #ARGV do
  local device = ARGV[i]
  local state = redis.call('HMGET', prefix .. 'device:' .. device, 'sessionId', 'expiresAt')
  local isOnline = state[1] and tonumber(state[2]) > now
  if isOnline or keepOffline then
    local inbox = prefix .. 'inbox:' .. device
    if collapse ~= '' then
      local ckey = inbox .. ':collapse'
      local old = redis.call('HGET', ckey, collapse)
      if old and redis.call('ZREM', inbox, old) == 1 then
        redis.call('HSET', prefix .. 'notif:' .. old, 't:' .. device, 'replaced:' .. now)
      end
      redis.call('HSET', ckey, collapse, id)
      if redis.call('PTTL', ckey) < inboxPx then redis.call('PEXPIRE', ckey, inboxPx) end
    end
    redis.call('ZADD', inbox, seq, id)
    local over = redis.call('ZCARD', inbox) - maxInbox
    if over > 0 then
      local popped = redis.call('ZPOPMIN', inbox, over)
      for j = 1, #popped, 2 do
        redis.call('HSET', prefix .. 'notif:' .. popped[j], 't:' .. device, 'expired:' .. now .. ':inbox_full')
        evicted[#evicted + 1] = popped[j]
      end
    end
    if redis.call('PTTL', inbox) < inboxPx then redis.call('PEXPIRE', inbox, inboxPx) end
    redis.call('HSET', KEYS[1], 't:' .. device, 'pending:' .. now)
    if isOnline then
      online = online + 1
      onlineIds[#onlineIds + 1] = device
    else
      queued = queued + 1
    end
  else
    redis.call('HSET', KEYS[1], 't:' .. device, 'expired:' .. now .. ':offline')
  end
end
redis.call('PEXPIRE', KEYS[1], notifPx)
local answer = cjson.encode({id = id, online = online, queued = queued})
if idempotent then
  redis.call('SET', KEYS[3], cjson.encode({fingerprint = fingerprint, answer = answer}), 'PX', idemPx)
end
return {'ok', answer, onlineIds, evicted}
`;

/**
 * KEYS: inbox. ARGV: prefix deviceId now limit.
 * Returns the payloads of pending, unexpired notifications, oldest first; drops expired ones.
 */
export const PENDING = `
local prefix, device, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[4]) - 1)
local out = {}
for _, id in ipairs(ids) do
  local n = redis.call('HMGET', prefix .. 'notif:' .. id, 'payload', 'expiresAt')
  if n[1] and tonumber(n[2]) > now then
    out[#out + 1] = n[1]
  else
    redis.call('ZREM', KEYS[1], id)
    if n[1] then redis.call('HSET', prefix .. 'notif:' .. id, 't:' .. device, 'expired:' .. now) end
  end
end
return out
`;

/**
 * KEYS: inbox, notif, collapse hash. ARGV: id deviceId now collapseKey.
 * Marks the target delivered (an ack is proof of receipt, even for one replaced or evicted
 * meanwhile); returns 1 if this ack changed its status, 0 if it was delivered already.
 */
export const ACK = `
local id, device, now, collapse = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
redis.call('ZREM', KEYS[1], id)
if collapse ~= '' and redis.call('HGET', KEYS[3], collapse) == id then redis.call('HDEL', KEYS[3], collapse) end
local status = redis.call('HGET', KEYS[2], 't:' .. device)
if status and string.sub(status, 1, 10) ~= 'delivered:' then
  redis.call('HSET', KEYS[2], 't:' .. device, 'delivered:' .. now)
  return 1
end
return 0
`;
