import { EVENT_LOG_LUA } from '../events/event-log.script';
import { withAdmitFirst } from '../auth/rate-limit.scripts';
import { luaScript } from '../redis/lua-script';

/**
 * Lua scripts for the Redis notification store. Keys live in partitions (src/redis/partitions.ts):
 * every script runs in one partition and builds its keys from the partition prefix `prefix` it is
 * given (`push:{<tag>}:` on a Cluster, `push:` with one partition). A notification is split into
 * parts, one per partition holding some of its targets, written by one PUBLISH_PART call each
 * (per chunk of targets), all sent together; each target is written once, whichever call gets there
 * first. With one partition and no Idempotency-Key a publish is one script, as before partitioning.
 *
 * Layout, per partition P (docs/design/sharding.md sections 2 and 4):
 *   P notif:<id>              hash, the part of the notification in P: payload (JSON), createdAt,
 *                             expiresAt (effective), forgetAt, and one field per target of P
 *                             `t:<deviceId>` = "status:updatedAt[:reason]"; `non`/`nq` the targets of
 *                             P counted online/queued at publish; `nd` the targets delivered
 *                             since (those written offline never count), see ACK;
 *                             PX = until NOTIFICATION_RETENTION after the last target can settle.
 *                             In the header partition h (the id's first 10 bits) it is also the
 *                             header: + `parts`, the partitions holding targets ("3,17,912")
 *   P notif:seq               counter; inbox order (oldest first) follows it (order matters per device only)
 *   P inbox:<deviceId>        zset notificationId -> seq, the device's pending notifications (P = the device's)
 *   P inbox:<deviceId>:collapse hash collapseKey -> notificationId pending with that key
 *   P idem:<apiKey>:<key>     string (P = the key's partition = h): {"fingerprint","id","createdAt",
 *                             "parts","expiresAt","answer" once answered}, PX = IDEMPOTENCY window
 *   P notif:<id> `u:<deviceId>` the time the target was reported unacked (once per target)
 *   P notif:<id> `f:<deviceId>` the target's native push outcome "status:at[:provider[:reason]]"
 *   P notif:<id> `l:<n>`      batch n of target device ids of P (comma-separated, DUE_BATCH at most),
 *                             `ln` the number of batches, `fb` the fallback policy, `ck` the collapse key
 *   P notif:due               zset, P's due-time index (score = due time, ms): members
 *                             `a|<id>|<n>` ack deadline of batch n (targets online at publish),
 *                             `r|<id>|<deviceId>` ack deadline of a redelivery from the inbox,
 *                             `x|<id>|<n>` ttl expiry of batch n,
 *                             `p|<id>|<n>|<o|u>` native pushes for batch n (trigger offline/unacked),
 *                             scored by the end of their claimant's lease once claimed;
 *                             PX = a day past its latest entry, so an index nobody sweeps ends too.
 *                             Outside Redis a push job is named `<P's number>/<member>`.
 * Presence (P device:<deviceId>) is read to decide who is online at the instant of the write, and
 * for the userId of `notification.*` events, which each script appends to P's event log
 * (see EVENT_LOG_LUA) in the same step as the status change they report.
 */

/** `notification.*` events: userId is the device's (null for a device never seen or forgotten). */
const EVENTS = `${EVENT_LOG_LUA}
local function emit_target(etype, prefix, id, device, user, reason)
  if user == nil then user = redis.call('HGET', prefix .. 'device:' .. device, 'userId') end
  emit(etype, { notificationId = id, deviceId = device, userId = user or cjson.null, reason = reason })
end
`;

/**
 * The due-time index's Lua side. \`keep_due\` (and \`extend_due\`) keeps the index's key a day past
 * its latest entry.
 * \`lease_job\` leases push job \`member\` (batch \`batch\` of notification \`id\`) to the caller and
 * returns it as {member, payload, deviceId, registration or '', ...} for the targets without an
 * outcome yet, or nil (and drops the entry) when nothing is left to send.
 */
const DUE = `
local DUE_SLACK = 86400000
local function keep_due(dueKey, now, last)
  local want = math.floor(last - now + DUE_SLACK)
  if redis.call('PTTL', dueKey) < want then redis.call('PEXPIRE', dueKey, want) end
end
-- keep_due for a caller whose \`last\` is usually past the index's end (a publish: its deadlines are
-- the newest): lengthened with PEXPIRE GT, one command where keep_due takes two; GT leaves a key
-- without a ttl alone (it counts as lasting forever), so the index's first entry gets one with NX.
-- Where \`last\` is not past the end, GT changes nothing and NX is a second command: keep_due then.
local function extend_due(dueKey, now, last)
  local want = math.floor(last - now + DUE_SLACK)
  if redis.call('PEXPIRE', dueKey, want, 'GT') == 0 then redis.call('PEXPIRE', dueKey, want, 'NX') end
end
local function lease_job(dueKey, prefix, member, id, batch, now, leaseMs)
  local nkey = prefix .. 'notif:' .. id
  local n = redis.call('HMGET', nkey, 'payload', 'l:' .. batch)
  local job = { member, n[1] }
  if n[1] and n[2] then
    for device in string.gmatch(n[2], '[^,]+') do
      if redis.call('HEXISTS', nkey, 'f:' .. device) == 0 then
        job[#job + 1] = device
        job[#job + 1] = redis.call('HGET', prefix .. 'device:' .. device, 'push') or ''
      end
    end
  end
  if #job == 2 then
    redis.call('ZREM', dueKey, member)
    return nil
  end
  redis.call('ZADD', dueKey, now + leaseMs, member)
  keep_due(dueKey, now, now + leaseMs)
  return job
end
-- Adds batch \`devices\` to notification \`id\` as a new list field; returns its number, and the
-- number as a string for the callers' member names (made once: Lua formats a number it
-- concatenates with sprintf('%.14g'), some 2,500 instructions each time).
local function add_batch(nkey, devices)
  local n = redis.call('HINCRBY', nkey, 'ln', '1')
  local nS = string.format('%d', n)
  redis.call('HSET', nkey, 'l:' .. nS, table.concat(devices, ','))
  return n, nS
end
`;

/**
 * The online targets a script hands back, grouped by the instance holding each device's session:
 * \`online_targets\` starts a set, \`online_add\` adds one, \`online_reply\` returns them as
 * {instanceId, 'deviceId,deviceId,...', ...} (device ids
 * hold no comma, see ID in src/common/patterns.ts), read by \`onlineTargets\` in
 * redis-notification.store.ts. One reply string per instance instead of two per target: a 10k
 * fan-out's reply was 20k strings for Redis to write and the gateway to read.
 */
const ONLINE = `
local function online_targets()
  return { instances = {}, devices = {} }
end
local function online_add(online, device, instance)
  instance = instance or ''
  local list = online.devices[instance]
  if not list then
    list = {}
    online.devices[instance] = list
    online.instances[#online.instances + 1] = instance
  end
  list[#list + 1] = device
end
local function online_reply(online)
  local out = {}
  for _, instance in ipairs(online.instances) do
    out[#out + 1] = instance
    out[#out + 1] = table.concat(online.devices[instance], ',')
  end
  return out
end
`;

/**
 * Idempotency records and replays, shared by PUBLISH_PART (a keyed publish all in one partition:
 * one call, as before partitions) and IDEM_BEGIN / REPLAY_PART (the steps of a keyed publish over
 * several partitions). `idem_check` returns nil when the key is free (absent, past its window by
 * the caller's clock, or started by an attempt whose header is gone), else
 * {'conflict'} | {'replay', answer, id, parts} | {'resume', id, createdAt, parts}.
 * `replay_part` returns {payload or false, online (ONLINE)} for one part: its targets still
 * pending that are online now, each given an ack deadline unless it has one.
 */
const IDEMPOTENCY = `${ONLINE}
local function idem_check(idemKey, prefix, fingerprint, now)
  local prev = redis.call('GET', idemKey)
  local record = prev and cjson.decode(prev)
  if not record or (record.expiresAt or math.huge) <= now then return nil end
  if record.fingerprint ~= fingerprint then return {'conflict'} end
  if record.answer then
    -- Records written before partitions hold only the answer: its id, in this partition.
    return {'replay', record.answer, record.id or cjson.decode(record.answer).id, record.parts or ''}
  end
  if redis.call('EXISTS', prefix .. 'notif:' .. record.id) == 1 then
    return {'resume', record.id, record.createdAt, record.parts}
  end
  return nil
end
local function replay_part(notifKey, dueKey, prefix, id, now, ackDeadline)
  local n = redis.call('HMGET', notifKey, 'payload', 'expiresAt')
  local online = online_targets()
  if n[1] and tonumber(n[2]) > now then
    local fields = redis.call('HGETALL', notifKey)
    for i = 1, #fields, 2 do
      if string.sub(fields[i], 1, 2) == 't:' and string.sub(fields[i + 1], 1, 8) == 'pending:' then
        local device = string.sub(fields[i], 3)
        local state = redis.call('HMGET', prefix .. 'device:' .. device, 'sessionId', 'expiresAt', 'instanceId')
        if state[1] and tonumber(state[2]) > now then
          online_add(online, device, state[3])
          -- Sent again now: it gets an ack deadline unless it has one.
          redis.call('ZADD', dueKey, 'NX', ackDeadline, 'r|' .. id .. '|' .. device)
        end
      end
    end
  end
  if #online.instances > 0 then keep_due(dueKey, now, ackDeadline) end
  return {n[1] or false, online_reply(online)}
end
`;

/**
 * Writes one part of a notification: the targets (rest: device ids) that fall in partition
 * `prefix`, all of them or one chunk, deciding who is online from presence in the same step.
 * With a `fingerprint` (an Idempotency-Key, when the whole publish is in this one partition, the
 * key's) it is the whole publish in one step, as before partitions: the key's record is checked
 * first (conflict, replay of a publish answered here, or resume of one that spans partitions:
 * nothing written then) and written with the answer at the end.
 * Each target is written once: a target whose `t:` field exists already (a retried, resumed or
 * raced call for the same notification) adds nothing again (it is only returned as online to
 * send to when it is still pending and online now). The part counts the targets it wrote as
 * online (`non`) or queued (`nq`). With `header` 1 (the call in the id's header partition
 * when there is no Idempotency-Key) it also records `parts`, the partitions holding targets.
 * `targets`: the device ids, comma-separated (one argument, not one each: cheaper for Redis and
 * the gateway alike). `users` (comma-separated, one partition only): users whose devices seen
 * since `forgetBefore` are targets too, at most `usersCap` of them (else {'unfolded'}, nothing
 * written).
 * Returns {'ok', online, queued (the part's totals so far), online targets (ONLINE), evictedIds, jobs}
 *       | {'conflict'} | {'replay', answer, payload or false, online targets (ONLINE)}
 *       | {'replay_parts', answer, id, parts} (answered, spanning partitions: replay each part)
 *       | {'resume', id, createdAt, parts} (see IDEM_BEGIN) | {'unfolded'}.
 * Events: `notification.expired` `inbox_full` for each notification evicted from a full inbox
 * (only a live one: one already past its ttl keeps reading as expired by ttl), `offline` for each
 * target offline when keepOffline is 0.
 */
export const PUBLISH_PART = luaScript({
  name: 'pgPublishPart',
  keys: ['notif', 'seq', 'due', 'idempotency'],
  args: {
    prefix: 'string',
    id: 'string',
    payload: 'string',
    createdAt: 'digits',
    expiresAt: 'int',
    forgetAt: 'int',
    collapseKey: 'string?',
    maxInbox: 'number',
    keepOffline: 'number',
    now: 'int',
    eventRetention: 'number',
    ackDeadline: 'int',
    fallback: 'string',
    leaseMs: 'number',
    batchSize: 'number',
    parts: 'string?',
    fingerprint: 'string?',
    windowMs: 'number',
    targets: 'string',
    users: 'string?',
    forgetBefore: 'digits',
    usersCap: 'number',
  },
  prelude: EVENTS + DUE + IDEMPOTENCY,
  body: `
-- The users' devices (PublishRequest.users: one partition only), as USER_DEVICES lists them (those
-- last seen before forgetBefore dropped), found before anything else is written: more than
-- usersCap of them and nothing is, {'unfolded'} (the caller looks them up itself).
local userDevices = nil
if users then
  userDevices = {}
  for user in string.gmatch(users, '[^,]+') do
    local key = prefix .. 'user:' .. user .. ':devices'
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. forgetBefore)
    -- One more than the cap leaves at most is read (no ZCARD first): more than usersCap in all and
    -- nothing is written.
    for _, device in ipairs(redis.call('ZRANGE', key, '0', usersCap - #userDevices)) do userDevices[#userDevices + 1] = device end
    if #userDevices > usersCap then return {'unfolded'} end
  end
end
if fingerprint then
  local seen = idem_check(idempotencyKey, prefix, fingerprint, now)
  if seen and seen[1] == 'replay' then
    if seen[4] ~= '' and seen[4] ~= parts then return {'replay_parts', seen[2], seen[3], seen[4]} end
    local again = replay_part(prefix .. 'notif:' .. seen[3], dueKey, prefix, seen[3], now, ackDeadline)
    return {'replay', seen[2], again[1], again[2]}
  end
  if seen then return seen end
end
events_init(prefix, now, eventRetention, nowS)
-- newPart: this call made the part's hash (its four fields are new), so no target of it has a
-- status yet and none need be looked up; a later chunk, a retry or a resumed call finds them there.
local newPart = redis.call('HSET', notifKey, 'payload', payload, 'createdAt', createdAt, 'expiresAt', expiresAtS, 'forgetAt', forgetAtS) == 4
if parts then redis.call('HSET', notifKey, 'parts', parts) end
if fallback ~= 'none' then redis.call('HSET', notifKey, 'fb', fallback) end
if collapseKey then redis.call('HSET', notifKey, 'ck', collapseKey) end
local seq = nil
local online, queued, sendTo, evicted = 0, 0, online_targets(), {}
local inboxPx = expiresAt - now
-- Numbers go to commands as strings made once: Redis formats a Lua number argument with
-- sprintf('%.17g') on every call (see HEARTBEAT in presence.scripts.ts).
local inboxPxS = string.format('%d', inboxPx)
-- Batches for the due-time index: sent now (ack deadline + expiry), kept for later (expiry), and
-- offline ones to push natively; jobs: the pushes this publish leases to its caller at once.
local sent, kept, missed, jobs = {}, {}, {}, {}
local function flush(batch, kind)
  if #batch == 0 then return end
  local n, nS = add_batch(notifKey, batch)
  -- A sent batch's expiry and ack deadline in one ZADD (one command per publish fewer).
  if kind == 'sent' then redis.call('ZADD', dueKey, expiresAtS, 'x|' .. id .. '|' .. nS, ackDeadlineS, 'a|' .. id .. '|' .. nS)
  elseif kind ~= 'missed' then redis.call('ZADD', dueKey, expiresAtS, 'x|' .. id .. '|' .. nS) end
  if kind ~= 'sent' and fallback ~= 'none' then
    local job = lease_job(dueKey, prefix, 'p|' .. id .. '|' .. nS .. '|o', id, nS, now, leaseMs)
    if job then jobs[#jobs + 1] = job end
  end
  for i = #batch, 1, -1 do batch[i] = nil end
end
local function add(batch, kind, device)
  batch[#batch + 1] = device
  if #batch >= batchSize then flush(batch, kind) end
end
-- Writes target \`device\` (its status field is claimed already): its inbox, or its offline outcome.
local function write_target(device, state, isOnline)
  if isOnline or keepOffline == 1 then
    if not seq then seq = string.format('%d', redis.call('INCR', seqKey)) end
    local inbox = prefix .. 'inbox:' .. device
    if collapseKey then
      local ckey = inbox .. ':collapse'
      local old = redis.call('HGET', ckey, collapseKey)
      if old and old ~= id and redis.call('ZREM', inbox, old) == 1 then
        redis.call('HSET', prefix .. 'notif:' .. old, 't:' .. device, 'replaced:' .. now)
      end
      redis.call('HSET', ckey, collapseKey, id)
      if redis.call('PTTL', ckey) < inboxPx then redis.call('PEXPIRE', ckey, inboxPx) end
    end
    redis.call('ZADD', inbox, seq, id)
    -- Every inbox is given a ttl in the step that creates it, so PEXPIRE NX (set a ttl only on a key
    -- without one) succeeds exactly when this ZADD made the inbox: its only entry, nothing over the
    -- cap (INBOX_MAX_SIZE >= 1). A fan-out to devices that ack as they go finds their inboxes empty
    -- (gone) every time, and so costs two commands per target here, not three.
    if redis.call('PEXPIRE', inbox, inboxPxS, 'NX') == 0 then
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
      -- An existing inbox lives at least as long as its longest-lived entry (GT: never shortened).
      redis.call('PEXPIRE', inbox, inboxPxS, 'GT')
    end
    if isOnline then
      online = online + 1
      online_add(sendTo, device, state[3])
      add(sent, 'sent', device)
    else
      queued = queued + 1
      add(kept, 'kept', device)
    end
  else
    emit_target('notification.expired', prefix, id, device, state[4], 'offline')
    if fallback ~= 'none' then add(missed, 'missed', device) end
  end
end
-- The targets go in groups of STATUS_GROUP. Per group (unless the part is new), one HMGET finds the
-- status fields an earlier attempt wrote (a retried, resumed or raced call: nothing is written
-- twice, and a target still pending that is online now is only sent again), and one HSET claims
-- the others' fields with their outcome (pending, or expired offline) before any inbox is touched.
-- Against one HSETNX per target it saves Redis a command per target (docs/performance.md, twelfth
-- round).
-- \`claimed\` keeps a device listed twice to one write.
local STATUS_GROUP = 500
local devices, from = {}, 1
while from <= #targets do
  local comma = string.find(targets, ',', from, true) or #targets + 1
  devices[#devices + 1] = string.sub(targets, from, comma - 1)
  from = comma + 1
end
if userDevices then for _, device in ipairs(userDevices) do devices[#devices + 1] = device end end
local pending, offline = 'pending:' .. nowS, 'expired:' .. nowS .. ':offline'
local claimed = {}
for g = 1, #devices, STATUS_GROUP do
  local last = math.min(g + STATUS_GROUP - 1, #devices)
  local earlier = {}
  if not newPart then
    local names = {}
    for i = g, last do names[#names + 1] = 't:' .. devices[i] end
    earlier = redis.call('HMGET', notifKey, unpack(names))
  end
  local fresh, statuses = {}, {}
  for i = g, last do
    local device = devices[i]
    if not claimed[device] then
      claimed[device] = true
      local state = redis.call('HMGET', prefix .. 'device:' .. device, 'sessionId', 'expiresAt', 'instanceId', 'userId')
      local isOnline = state[1] and tonumber(state[2]) > now
      local written = earlier[i - g + 1]
      if written then
        if isOnline and string.sub(written, 1, 8) == 'pending:' and expiresAt > now then
          online_add(sendTo, device, state[3])
        end
      else
        statuses[#statuses + 1] = 't:' .. device
        statuses[#statuses + 1] = (isOnline or keepOffline == 1) and pending or offline
        fresh[#fresh + 1] = { device, state, isOnline }
      end
    end
  end
  if #statuses > 0 then redis.call('HSET', notifKey, unpack(statuses)) end
  for _, t in ipairs(fresh) do write_target(t[1], t[2], t[3]) end
end
flush(sent, 'sent')
flush(kept, 'kept')
flush(missed, 'missed')
if online + queued > 0 or #jobs > 0 then extend_due(dueKey, now, math.max(expiresAt, ackDeadline)) end
-- A new part's totals are this call's (one HSET); a later chunk's or a retry's add to them.
local totals
if newPart then
  redis.call('HSET', notifKey, 'non', online, 'nq', queued)
  totals = { online, queued }
else
  totals = { redis.call('HINCRBY', notifKey, 'non', online), redis.call('HINCRBY', notifKey, 'nq', queued) }
end
redis.call('PEXPIRE', notifKey, math.max(1, forgetAt - now))
if fingerprint then
  local answer = cjson.encode({id = id, online = totals[1], queued = totals[2]})
  redis.call('SET', idempotencyKey, cjson.encode({fingerprint = fingerprint, id = id, createdAt = tostring(createdAt), parts = parts or '',
    answer = answer, expiresAt = now + windowMs}), 'PX', windowMs)
end
return {'ok', totals[1], totals[2], online_reply(sendTo), evicted, jobs}
`,
});

/**
 * PUBLISH_PART with the API key's rate-limit admission first, in the same call (one round trip
 * per POST fewer): refused, it returns {'refused', ...} and writes nothing (withAdmitFirst). On one
 * Redis only, for a publish that is one call without an Idempotency-Key.
 */
export const ADMIT_PUBLISH_PART = withAdmitFirst(PUBLISH_PART.spec);

/**
 * The first step of a publish with an Idempotency-Key, in the key's partition, which is also the
 * header partition of the notification id (the caller mints it so). Returns
 *   {'conflict'}: the key was used with another body;
 *   {'replay', answer, id, parts}: a publish under this key was answered already;
 *   {'resume', id, createdAt, parts}: a publish under this key started and was not answered (it
 *     failed part-way, or runs now): the caller writes its parts again (each target once) and commits;
 *   {'fresh'}: the record {fingerprint, id, createdAt, parts} and the header (payload, createdAt,
 *     expiresAt, forgetAt, parts) are written; the caller writes the parts and commits.
 * A record without answer whose header is gone (the first attempt failed longer ago than its
 * notification lived) is started afresh. The window ends by the caller's clock too.
 */
export const IDEM_BEGIN = luaScript({
  name: 'pgIdemBegin',
  keys: ['idempotency', 'notif'],
  args: {
    prefix: 'string',
    fingerprint: 'string',
    id: 'string',
    createdAt: 'string',
    payload: 'string',
    expiresAt: 'number',
    forgetAt: 'number',
    parts: 'string',
    windowMs: 'number',
    now: 'number',
  },
  prelude: DUE + IDEMPOTENCY,
  body: `
local seen = idem_check(idempotencyKey, prefix, fingerprint, now)
if seen then return seen end
redis.call('SET', idempotencyKey, cjson.encode({fingerprint = fingerprint, id = id, createdAt = createdAt, parts = parts, expiresAt = now + windowMs}), 'PX', windowMs)
redis.call('HSET', notifKey, 'payload', payload, 'createdAt', createdAt, 'expiresAt', expiresAt, 'forgetAt', forgetAt, 'parts', parts)
redis.call('PEXPIRE', notifKey, math.max(1, forgetAt - now))
return {'fresh'}
`,
});

/** The last step of a publish with an Idempotency-Key: records its answer; the first one recorded wins and is returned. */
export const IDEM_COMMIT = luaScript({
  name: 'pgIdemCommit',
  keys: ['idempotency'],
  args: { answer: 'string' },
  body: `
local prev = redis.call('GET', idempotencyKey)
if not prev then return answer end
local record = cjson.decode(prev)
if record.answer then return record.answer end
record.answer = answer
redis.call('SET', idempotencyKey, cjson.encode(record), 'KEEPTTL')
return answer
`,
});

/**
 * A replayed publish, in one part's partition: the part's targets still pending that are online
 * now, each given an ack deadline unless it has one, and the payload to send them (false when the
 * notification is gone or past its expiry). Records nothing.
 * Returns {payload or false, online targets (ONLINE)}.
 */
export const REPLAY_PART = luaScript({
  name: 'pgReplayPart',
  keys: ['notif', 'due'],
  args: { prefix: 'string', id: 'string', now: 'number', ackDeadline: 'number' },
  prelude: DUE + IDEMPOTENCY,
  body: `
return replay_part(notifKey, dueKey, prefix, id, now, ackDeadline)
`,
});

/** The payloads of the device's pending, unexpired notifications, oldest first; drops expired ones. */
/**
 * A target found past its ttl (here or by the index) leaves the inbox, and is recorded expired
 * (at its expiry) with its `notification.expired` `ttl` once: only a pending one changes.
 */
const EXPIRE_TARGET = `
local function expire_target(prefix, id, device, expiresAt, collapseKey)
  local nkey = prefix .. 'notif:' .. id
  local inbox = prefix .. 'inbox:' .. device
  redis.call('ZREM', inbox, id)
  if collapseKey and redis.call('HGET', inbox .. ':collapse', collapseKey) == id then redis.call('HDEL', inbox .. ':collapse', collapseKey) end
  local status = redis.call('HGET', nkey, 't:' .. device)
  if not status or string.sub(status, 1, 8) ~= 'pending:' then return 0 end
  redis.call('HSET', nkey, 't:' .. device, 'expired:' .. expiresAt)
  emit_target('notification.expired', prefix, id, device, nil, 'ttl')
  return 1
end
`;

export const PENDING = luaScript({
  name: 'pgPending',
  keys: ['inbox'],
  args: { prefix: 'string', deviceId: 'string', now: 'number', limit: 'number', eventRetention: 'number' },
  prelude: EVENTS + EXPIRE_TARGET,
  body: `
events_init(prefix, now, eventRetention)
local ids = redis.call('ZRANGE', inboxKey, 0, limit - 1)
local out = {}
for _, id in ipairs(ids) do
  local n = redis.call('HMGET', prefix .. 'notif:' .. id, 'payload', 'expiresAt', 'ck')
  if n[1] and tonumber(n[2]) > now then
    out[#out + 1] = n[1]
  elseif n[1] then
    expire_target(prefix, id, deviceId, n[2], n[3])
  else
    redis.call('ZREM', inboxKey, id)
  end
end
return out
`,
});

/**
 * Records a batch of acks (rest: id, deviceId, collapseKey or '', userId or '', fromInbox '1' or
 * '0', repeated; see Ack), in order. Each marks its target delivered (an ack is proof of receipt, even for one replaced, evicted or reported
 * unacked meanwhile) and records `notification.delivered`; returns per ack 1 if it changed the
 * target's status, 0 (and records nothing) if it was delivered already. The same target twice in
 * a batch is delivered once.
 * The part counts its targets delivered (`nd`, targets written offline and never sent left out).
 * Once that reaches the targets it wrote pending (`non` + `nq`), every one of them is delivered,
 * which is final: its ack deadlines and ttl expiries (`a|` and `x|` entries) would find nothing
 * left to do, so they leave the due-time index now instead of being claimed later, one by one,
 * as no-ops (at 1k POST/s those claims came back every second as bursts of Redis work).
 */
export const ACK = luaScript({
  name: 'pgAck',
  keys: ['due'],
  args: { prefix: 'string', now: 'int', eventRetention: 'number' },
  rest: true,
  prelude: EVENTS,
  body: `
events_init(prefix, now, eventRetention, nowS)
-- delivered: id -> targets of this part delivered by this call (in the order first seen: parts);
-- live: id -> whether the part's hash exists (asked once per id, see below)
local changed, delivered, parts, live = {}, {}, {}, {}
local deliveredNow = 'delivered:' .. event_log.ts
for i = 1, #rest, 5 do
  local id, deviceId, collapseKey, userId = rest[i], rest[i + 1], rest[i + 2], rest[i + 3]
  local inboxKey = prefix .. 'inbox:' .. deviceId
  local notifKey = prefix .. 'notif:' .. id
  local field = 't:' .. deviceId
  local removed = redis.call('ZREM', inboxKey, id)
  -- A notification sent live has no redelivery deadline of its own (its batch's goes below), unless
  -- it was also read back from the inbox somewhere: that one, left here, finds it delivered when it
  -- comes due and only goes.
  if rest[i + 4] == '1' then redis.call('ZREM', dueKey, 'r|' .. id .. '|' .. deviceId) end
  if collapseKey ~= '' and redis.call('HGET', inboxKey .. ':collapse', collapseKey) == id then redis.call('HDEL', inboxKey .. ':collapse', collapseKey) end
  -- A target in its inbox is pending (every script that settles a target takes it out of the inbox
  -- in the same step: ACK, EXPIRE_TARGET, a collapse's replacement, an eviction), so its status
  -- need not be read, only whether the part is still there (a part forgotten while an inbox
  -- outlived it is not recreated). A fan-out's acks come in batches of one id: one EXISTS per
  -- batch instead of an HGET of the status per ack.
  local status
  if removed == 1 then
    if live[id] == nil then live[id] = redis.call('EXISTS', notifKey) == 1 end
    if live[id] then status = 'pending:' end
  else
    status = redis.call('HGET', notifKey, field)
  end
  if status and string.sub(status, 1, 10) ~= 'delivered:' then
    redis.call('HSET', notifKey, field, deliveredNow)
    emit_target('notification.delivered', prefix, id, deviceId, userId ~= '' and userId or nil)
    changed[#changed + 1] = 1
    if string.sub(status, -8) ~= ':offline' then
      if not delivered[id] then
        delivered[id] = 0
        parts[#parts + 1] = id
      end
      delivered[id] = delivered[id] + 1
    end
  else
    changed[#changed + 1] = 0
  end
end
for _, id in ipairs(parts) do
  local notifKey = prefix .. 'notif:' .. id
  local count = redis.call('HINCRBY', notifKey, 'nd', delivered[id])
  local n = redis.call('HMGET', notifKey, 'non', 'nq', 'ln')
  if count >= (tonumber(n[1]) or 0) + (tonumber(n[2]) or 0) then
    local members, batches = {}, tonumber(n[3]) or 0
    for batch = 1, batches do
      local suffix = '|' .. string.format('%d', batch)
      members[#members + 1] = 'a|' .. id .. suffix
      members[#members + 1] = 'x|' .. id .. suffix
      if #members >= 200 or batch == batches then
        redis.call('ZREM', dueKey, unpack(members))
        members = {}
      end
    end
  end
end
return changed
`,
});

/** Ack deadlines of targets just sent from their inboxes (rest: member, member, ...); an existing deadline stays. */
export const ARM = luaScript({
  name: 'pgArmDeadlines',
  keys: ['due'],
  args: { deadline: 'number', now: 'number' },
  rest: true,
  prelude: DUE,
  body: `
for _, member in ipairs(rest) do redis.call('ZADD', dueKey, 'NX', deadline, member) end
keep_due(dueKey, now, deadline)
return 0
`,
});

/**
 * Takes due entries of the index (see the layout above), oldest first, until about \`limit\` targets
 * were worked on (at least one entry; each entry counts its targets, at least 1), so one call
 * keeps Redis busy for a bounded time, and does what each stands for, all in this one step:
 * - an ack deadline (\`a\`, \`r\`): \`notification.unacked\` once per target (the \`u:<deviceId>\` field)
 *   while it still waits for delivery: pending, or expired by its ttl alone (a ttl-0 notification
 *   expires with its ack window). Under fallback \`unacked\` those targets become a new push batch,
 *   leased to the caller at once;
 * - a ttl expiry (\`x\`): each target still pending expires (EXPIRE_TARGET);
 * - a push batch (\`p\`) whose lease ran out (its claimant died): leased to the caller.
 * Returns {claimed, unacked, expired, jobs (as lease_job gives them), more (1: more may be due now)}.
 */
export const CLAIM_DUE = luaScript({
  name: 'pgClaimDue',
  keys: ['due'],
  args: { prefix: 'string', now: 'number', limit: 'number', leaseMs: 'number', eventRetention: 'number' },
  prelude: EVENTS + DUE + EXPIRE_TARGET,
  body: `
events_init(prefix, now, eventRetention)
local due = redis.call('ZRANGEBYSCORE', dueKey, '-inf', now, 'LIMIT', 0, limit)
local unacked, expired, jobs, work, claimed = 0, 0, {}, 0, 0
for _, member in ipairs(due) do
  if work >= limit then break end
  claimed = claimed + 1
  work = work + 1
  local kind, id, rest1, trigger = string.match(member, '^(%a)|([^|]+)|([^|]+)|?(%a?)$')
  local nkey = prefix .. 'notif:' .. (id or '')
  if kind == 'p' then
    local job = lease_job(dueKey, prefix, member, id, rest1, now, leaseMs)
    if job then
      jobs[#jobs + 1] = job
      work = work + (#job - 2) / 2
    end
  else
    redis.call('ZREM', dueKey, member)
    local devices = {}
    if kind == 'r' then
      devices[1] = rest1
    elseif kind then
      for device in string.gmatch(redis.call('HGET', nkey, 'l:' .. rest1) or '', '[^,]+') do devices[#devices + 1] = device end
    end
    work = work + #devices
    if kind == 'x' then
      local n = redis.call('HMGET', nkey, 'expiresAt', 'ck')
      for _, device in ipairs(devices) do expired = expired + expire_target(prefix, id, device, n[1], n[2]) end
    elseif kind == 'a' or kind == 'r' then
      local fresh = {}
      for _, device in ipairs(devices) do
        local status = redis.call('HGET', nkey, 't:' .. device)
        if status and (string.match(status, '^pending:') or string.match(status, '^expired:%d+$'))
          and redis.call('HSETNX', nkey, 'u:' .. device, now) == 1 then
          emit_target('notification.unacked', prefix, id, device)
          unacked = unacked + 1
          fresh[#fresh + 1] = device
        end
      end
      if #fresh > 0 and redis.call('HGET', nkey, 'fb') == 'unacked' then
        local n = add_batch(nkey, fresh)
        local job = lease_job(dueKey, prefix, 'p|' .. id .. '|' .. n .. '|u', id, n, now, leaseMs)
        if job then jobs[#jobs + 1] = job end
      end
    end
  end
end
local more = (claimed < #due or #due == limit) and 1 or 0
return {claimed, unacked, expired, jobs, more}
`,
});

/** Extends the lease of push jobs still being sent (rest: members); a job already released stays released. */
export const RENEW = luaScript({
  name: 'pgRenewFallback',
  keys: ['due'],
  args: { untilAt: 'number' },
  rest: true,
  body: `
for _, member in ipairs(rest) do redis.call('ZADD', dueKey, 'XX', untilAt, member) end
return 0
`,
});

/**
 * Records native push outcomes of one job (rest: deviceId, outcome, registration used or '', ...):
 * the first outcome per target wins. \`gone\` deletes the device's registration if it is still the
 * one that was used. \`done\` = 1 releases the job.
 */
export const RECORD_FALLBACK = luaScript({
  name: 'pgRecordFallback',
  keys: ['notif', 'due'],
  args: { prefix: 'string', member: 'string', done: 'number' },
  rest: true,
  body: `
local exists = redis.call('EXISTS', notifKey) == 1
for i = 1, #rest, 3 do
  local device, outcome, used = rest[i], rest[i + 1], rest[i + 2]
  if exists then redis.call('HSETNX', notifKey, 'f:' .. device, outcome) end
  if used ~= '' and string.match(outcome, ':gone$') then
    local dkey = prefix .. 'device:' .. device
    if redis.call('HGET', dkey, 'push') == used then redis.call('HDEL', dkey, 'push', 'pushProvider') end
  end
end
if done == 1 then redis.call('ZREM', dueKey, member) end
return 0
`,
});
