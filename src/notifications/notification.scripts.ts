import { EVENT_LOG_LUA } from '../events/event-log.script';
import { luaScript } from '../redis/lua-script';

/**
 * Lua scripts for the Redis notification store. A publish is one script: the idempotency record,
 * the notification, every target's status and every inbox entry are written together or not at
 * all, so a 202 never stands for half a notification. Keys derived from ids are built from the prefix it is given.
 *
 * Layout (prefix `push:` by default):
 *   notif:<id>                hash: payload (JSON), createdAt, expiresAt (effective), and one
 *                             field per target `t:<deviceId>` = "status:updatedAt[:reason]";
 *                             PX = until NOTIFICATION_RETENTION after the last target can settle
 *   notif:seq                 counter; inbox order (oldest first) follows it
 *   inbox:<deviceId>          zset notificationId -> seq, the device's pending notifications
 *   inbox:<deviceId>:collapse hash collapseKey -> notificationId pending with that key
 *   idem:<apiKey>:<key>       string: {"fingerprint":..,"answer":..}, PX = IDEMPOTENCY window
 *   notif:<id> `u:<deviceId>` the time the target was reported unacked (once per target)
 * Presence (device:<deviceId>) is read to decide who is online at the instant of the write, and
 * for the userId of `notification.*` events, which each script appends to the event log
 * (`<prefix>events`, see EVENT_LOG_LUA) in the same step as the status change they report.
 */

/** `notification.*` events: userId is the device's (null for a device never seen or forgotten). */
const EVENTS = `${EVENT_LOG_LUA}
local function emit_target(etype, prefix, id, device, user, reason)
  if user == nil then user = redis.call('HGET', prefix .. 'device:' .. device, 'userId') end
  emit(etype, { notificationId = id, deviceId = device, userId = user or cjson.null, reason = reason })
end
`;

/**
 * Stores a notification for every target (rest: the device ids), decides who is online from
 * presence in the same step, and records the answer for an Idempotency-Key.
 * The idempotency key is a placeholder in the same hash slot when there is none: a Cluster routes a
 * script by its keys, so even an unused key must not point elsewhere.
 * Returns {'conflict'}
 *       | {'replay', answer, payload, onlineIds, onlineInstances}: the first answer, and the
 *         targets still pending that are online now (payload false when the notification is gone)
 *       | {'ok', answer, onlineIds, onlineInstances, evictedIds}.
 * Events: `notification.expired` `inbox_full` for each notification evicted from a full inbox
 * (only a live one: one already past its ttl keeps reading as expired by ttl), `offline` for each
 * target offline when keepOffline is 0. A replay records nothing.
 */
export const PUBLISH = luaScript({
  name: 'pgPublish',
  keys: ['notif', 'seq', 'idempotency'],
  args: {
    prefix: 'string',
    id: 'string',
    payload: 'string',
    createdAt: 'number',
    expiresAt: 'number',
    notifPx: 'number',
    collapseKey: 'string?',
    maxInbox: 'number',
    keepOffline: 'number',
    now: 'number',
    fingerprint: 'string?',
    idempotencyPx: 'number',
    eventRetention: 'number',
  },
  rest: true,
  prelude: EVENTS,
  body: `
events_init(prefix, now, eventRetention)
if fingerprint then
  local prev = redis.call('GET', idempotencyKey)
  local record = prev and cjson.decode(prev)
  -- The window ends by the caller's clock (expiresAt), not only by Redis's own (PX).
  if record and (record.expiresAt or math.huge) > now then
    if record.fingerprint ~= fingerprint then return {'conflict'} end
    local first = prefix .. 'notif:' .. cjson.decode(record.answer).id
    local n = redis.call('HMGET', first, 'payload', 'expiresAt')
    local ids, instances = {}, {}
    if n[1] and tonumber(n[2]) > now then
      local fields = redis.call('HGETALL', first)
      for i = 1, #fields, 2 do
        if string.sub(fields[i], 1, 2) == 't:' and string.sub(fields[i + 1], 1, 8) == 'pending:' then
          local device = string.sub(fields[i], 3)
          local state = redis.call('HMGET', prefix .. 'device:' .. device, 'sessionId', 'expiresAt', 'instanceId')
          if state[1] and tonumber(state[2]) > now then
            ids[#ids + 1] = device
            instances[#instances + 1] = state[3]
          end
        end
      end
    end
    return {'replay', record.answer, n[1] or false, ids, instances}
  end
end

local seq = redis.call('INCR', seqKey)
redis.call('HSET', notifKey, 'payload', payload, 'createdAt', createdAt, 'expiresAt', expiresAt, 'forgetAt', now + notifPx)
local online, queued, onlineIds, onlineInstances, evicted = 0, 0, {}, {}, {}
local inboxPx = expiresAt - now
for _, device in ipairs(rest) do
  local state = redis.call('HMGET', prefix .. 'device:' .. device, 'sessionId', 'expiresAt', 'instanceId', 'userId')
  local isOnline = state[1] and tonumber(state[2]) > now
  if isOnline or keepOffline == 1 then
    local inbox = prefix .. 'inbox:' .. device
    if collapseKey then
      local ckey = inbox .. ':collapse'
      local old = redis.call('HGET', ckey, collapseKey)
      if old and redis.call('ZREM', inbox, old) == 1 then
        redis.call('HSET', prefix .. 'notif:' .. old, 't:' .. device, 'replaced:' .. now)
      end
      redis.call('HSET', ckey, collapseKey, id)
      if redis.call('PTTL', ckey) < inboxPx then redis.call('PEXPIRE', ckey, inboxPx) end
    end
    redis.call('ZADD', inbox, seq, id)
    local over = redis.call('ZCARD', inbox) - maxInbox
    if over > 0 then
      local popped = redis.call('ZPOPMIN', inbox, over)
      for j = 1, #popped, 2 do
        local old = prefix .. 'notif:' .. popped[j]
        -- A forgotten notification is not recreated, and one past its ttl was not evicted: it had expired.
        if (tonumber(redis.call('HGET', old, 'expiresAt')) or 0) > now then
          redis.call('HSET', old, 't:' .. device, 'expired:' .. now .. ':inbox_full')
          emit_target('notification.expired', prefix, popped[j], device, state[4], 'inbox_full')
          evicted[#evicted + 1] = popped[j]
        end
      end
    end
    if redis.call('PTTL', inbox) < inboxPx then redis.call('PEXPIRE', inbox, inboxPx) end
    redis.call('HSET', notifKey, 't:' .. device, 'pending:' .. now)
    if isOnline then
      online = online + 1
      onlineIds[#onlineIds + 1] = device
      onlineInstances[#onlineInstances + 1] = state[3]
    else
      queued = queued + 1
    end
  else
    redis.call('HSET', notifKey, 't:' .. device, 'expired:' .. now .. ':offline')
    emit_target('notification.expired', prefix, id, device, state[4], 'offline')
  end
end
redis.call('PEXPIRE', notifKey, notifPx)
local answer = cjson.encode({id = id, online = online, queued = queued})
if fingerprint then
  redis.call('SET', idempotencyKey, cjson.encode({fingerprint = fingerprint, answer = answer, expiresAt = now + idempotencyPx}), 'PX', idempotencyPx)
end
return {'ok', answer, onlineIds, onlineInstances, evicted}
`,
});

/** The payloads of the device's pending, unexpired notifications, oldest first; drops expired ones. */
export const PENDING = luaScript({
  name: 'pgPending',
  keys: ['inbox'],
  args: { prefix: 'string', deviceId: 'string', now: 'number', limit: 'number' },
  body: `
local ids = redis.call('ZRANGE', inboxKey, 0, limit - 1)
local out = {}
for _, id in ipairs(ids) do
  local n = redis.call('HMGET', prefix .. 'notif:' .. id, 'payload', 'expiresAt')
  if n[1] and tonumber(n[2]) > now then
    out[#out + 1] = n[1]
  else
    redis.call('ZREM', inboxKey, id)
    if n[1] then redis.call('HSET', prefix .. 'notif:' .. id, 't:' .. deviceId, 'expired:' .. now) end
  end
end
return out
`,
});

/**
 * Marks the target delivered (an ack is proof of receipt, even for one replaced, evicted or
 * reported unacked meanwhile) and records `notification.delivered`; returns 1 if this ack changed
 * its status, 0 (and records nothing) if it was delivered already.
 */
export const ACK = luaScript({
  name: 'pgAck',
  keys: ['inbox', 'notif', 'collapseIndex'],
  args: { prefix: 'string', id: 'string', deviceId: 'string', now: 'number', collapseKey: 'string?', eventRetention: 'number' },
  prelude: EVENTS,
  body: `
events_init(prefix, now, eventRetention)
redis.call('ZREM', inboxKey, id)
if collapseKey and redis.call('HGET', collapseIndexKey, collapseKey) == id then redis.call('HDEL', collapseIndexKey, collapseKey) end
local status = redis.call('HGET', notifKey, 't:' .. deviceId)
if status and string.sub(status, 1, 10) ~= 'delivered:' then
  redis.call('HSET', notifKey, 't:' .. deviceId, 'delivered:' .. now)
  emit_target('notification.delivered', prefix, id, deviceId)
  return 1
end
return 0
`,
});

/**
 * The device was sent the notification and did not ack within ACK_TIMEOUT_MS: records
 * `notification.unacked` once per target (the `u:<deviceId>` field), and only while the target
 * still waits for delivery: pending, or expired by its ttl alone (a ttl-0 notification expires
 * with its ack window). Returns 1 if it recorded the event, else 0.
 */
export const UNACKED = luaScript({
  name: 'pgUnacked',
  keys: ['notif'],
  args: { prefix: 'string', id: 'string', deviceId: 'string', now: 'number', eventRetention: 'number' },
  prelude: EVENTS,
  body: `
events_init(prefix, now, eventRetention)
local status = redis.call('HGET', notifKey, 't:' .. deviceId)
if not status or not (string.match(status, '^pending:') or string.match(status, '^expired:%d+$')) then return 0 end
if redis.call('HSETNX', notifKey, 'u:' .. deviceId, now) == 0 then return 0 end
emit_target('notification.unacked', prefix, id, deviceId)
return 1
`,
});
