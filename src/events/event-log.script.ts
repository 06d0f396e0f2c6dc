/**
 * The event log's Lua side (PRODUCT.md "Events for backends"): every script that changes presence
 * or a notification's status appends its events to the Stream `<prefix>events` in the same atomic
 * step. Entry ids are `<ms>-*` with ms = the caller's clock, never below the stream's last id (so
 * clock skew between instances cannot make an XADD fail, and log order is commit order). Each XADD
 * trims by age (MINID ~, whole stream nodes: cheap), and the key expires EVENT_RETENTION after the
 * last event, so a quiet log disappears too. A script calls `events_init` once, then `emit` per event;
 * `emit`'s optional `ts` is the event's `timestamp` when the change happened before the script (an
 * offline held by PRESENCE_EVENT_GRACE_MS), the script's `now` otherwise.
 * Used as a script's prelude (src/redis/lua-script.ts).
 */
export const EVENT_LOG_LUA = `
local event_log = nil
local function events_init(prefix, now, retention)
  event_log = { key = prefix .. 'events', now = now, retention = retention }
end
local function emit(etype, data, ts)
  local log = event_log
  if not log.ms then
    local last = redis.call('XREVRANGE', log.key, '+', '-', 'COUNT', 1)[1]
    local last_ms = last and tonumber(string.match(last[1], '^%d+')) or 0
    log.ms = math.max(last_ms, log.now)
  end
  redis.call('XADD', log.key, 'MINID', '~', string.format('%.0f', math.max(0, log.now - log.retention + 1)),
    string.format('%.0f', log.ms) .. '-*', 'type', etype, 'ts', string.format('%.0f', ts or log.now), 'data', cjson.encode(data))
  if not log.expiring then
    redis.call('PEXPIRE', log.key, log.retention)
    log.expiring = true
  end
end
`;
