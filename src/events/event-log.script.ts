/**
 * The event log's Lua side (PRODUCT.md "Events for backends"): every script that changes presence
 * or a notification's status appends its events to its partition's Stream `P events` (P = the
 * partition prefix of the device or user the script is about, `<prefix>` itself with one
 * partition) in the same atomic step. Entry ids are `<ms>-*` with
 * ms = max(the stream's last ms, the caller's clock, the partition's floor + 1): never below the
 * last id (so clock skew between instances cannot make an XADD fail, and stream order is commit
 * order), and always above `P events:floor`, the time up to which the partition's lease holder
 * declared the stream settled (docs/design/sharding.md section 3: what makes a pull cursor exact
 * across partitions; the key does not exist with one partition). A script's first XADD trims by
 * age (MINID ~, whole stream nodes), its later ones do not (a batch of 500 acks trims once, not
 * 500 times), and the key expires EVENT_RETENTION after the last event, so a quiet log
 * disappears too. A script calls `events_init` once (with `nowS`, its clock as the caller's string,
 * when it has it: see 'int' in src/redis/lua-script.ts), then `emit` per event; `emit`'s
 * optional `ts` is the event's `timestamp` when the change happened before the script (an offline
 * held by PRESENCE_EVENT_GRACE_MS), the script's `now` otherwise.
 * Used as a script's prelude (src/redis/lua-script.ts).
 */
export const EVENT_LOG_LUA = `
local event_log = nil
local function events_init(prefix, now, retention, nowS)
  event_log = { key = prefix .. 'events', floor = prefix .. 'events:floor', now = now, retention = retention,
    ts = nowS and not string.find(nowS, '%D') and nowS or string.format('%.0f', now) }
end
local function emit(etype, data, ts)
  local log = event_log
  local at = ts and string.format('%.0f', ts) or log.ts
  local json = cjson.encode(data)
  if log.id then
    redis.call('XADD', log.key, log.id, 'type', etype, 'ts', at, 'data', json)
    return
  end
  -- The script's first event: the entry id (one ms for all of the script's events) and the trim.
  -- Usually the script's clock is at or past the stream's last entry, and XADD with that ms
  -- succeeds (the same ms as the last entry gets the next sequence number); it refuses an id
  -- below the last one (another instance's clock ran ahead), and then the last entry's ms is used.
  local floor = tonumber(redis.call('GET', log.floor) or '0') or 0
  local minid = string.format('%.0f', math.max(0, log.now - log.retention + 1))
  local function first(call, ms)
    log.id = (ms == log.now and ms > floor and log.ts or string.format('%.0f', math.max(ms, floor + 1))) .. '-*'
    return call('XADD', log.key, 'MINID', '~', minid, log.id, 'type', etype, 'ts', at, 'data', json)
  end
  local added = first(redis.pcall, log.now)
  if type(added) == 'table' and added.err then
    local last = redis.call('XREVRANGE', log.key, '+', '-', 'COUNT', 1)[1]
    first(redis.call, math.max(last and tonumber(string.match(last[1], '^%d+')) or 0, log.now))
  end
  redis.call('PEXPIRE', log.key, log.retention)
end
`;

/** Floors move at most this often, by the lease holder of each partition (EventFloorsService). */
export const FLOOR_PERIOD_MS = 1_000;
