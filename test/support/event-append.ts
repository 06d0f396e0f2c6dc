import { EVENT_LOG_LUA } from '../../src/events/event-log.script';
import { luaScript } from '../../src/redis/lua-script';

/**
 * What the presence and notification scripts do when they record an event: emit through the
 * event log's prelude, in the partition of the key passed as `events`. For the event log and
 * webhook queue specs, which need events without devices behind them.
 */
export const TEST_EVENT_APPEND = luaScript({
  name: 'testEventAppend',
  keys: ['events'],
  args: { prefix: 'string', now: 'number', retention: 'number', etype: 'string', data: 'string' },
  prelude: EVENT_LOG_LUA,
  body: `
events_init(prefix, now, retention)
emit(etype, cjson.decode(data))
return 1
`,
});
