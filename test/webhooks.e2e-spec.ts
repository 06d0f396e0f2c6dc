import Ajv from 'ajv';
import Redis from 'ioredis';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Socket } from 'socket.io-client';
import { ASYNCAPI } from '../src/docs/asyncapi';
import { EVENT_TYPES, EventEnvelope, OFFLINE_REASONS } from '../src/events/event.types';
import { api, connectDevice, metric, metricReaches, nextEvent, waitFor } from './support/app';
import { freePort } from './support/find-redis';
import { RunningGateway, startGateway } from './support/gateways';
import { REPO, start } from './support/outside-app';
import { RawDevice } from './support/raw-device';
import { deleteKeys, eventsSettled, testRedisUrl, uniquePrefix } from './support/redis';
import { startRedisCluster } from './support/redis-servers';
import { deviceToken } from './support/tokens';
import { WebhookReceiver } from './support/webhook-receiver';

const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
const DELIVERED = (url: string) => `push_gateway_webhook_delivered_total{url="${url}"}`;
const DISABLED = (url: string) => `push_gateway_webhook_disabled{url="${url}"}`;
/** The offline reasons that closes, takeovers, kicks, sweeps and instances cause: the 'every event type' test produces them. */
const SESSION_REASONS = ['client_close', 'heartbeat_timeout', 'instance_lost', 'kicked', 'replaced', 'server_shutdown'];
/** The offline reasons a device's own conduct causes: the sibling test produces them. Together: every reason. */
const CONDUCT_REASONS = ['rate_limited', 'slow_consumer', 'token_expired'];

/** Publishes to devices that are offline with ttl 0: one `notification.expired` event per device, in publish order. */
async function expire(gw: RunningGateway, deviceIds: string[]): Promise<void> {
  const res = await api(gw.url, '/v1/notifications', { method: 'POST', json: { deviceIds, data: { n: 1 }, ttl: 0 } });
  expect(res.status).toBe(202);
}

/** The recorded `notification.expired` events of `deviceIds` in log order, read through GET /v1/events once settled. */
async function recorded(gw: RunningGateway, deviceIds: string[]): Promise<EventEnvelope[]> {
  await eventsSettled();
  const events: EventEnvelope[] = [];
  let after = '';
  for (;;) {
    const page = (await (await api(gw.url, `/v1/events?limit=1000&types=notification.expired${after}`)).json()) as { events: EventEnvelope[]; next: string };
    if (page.events.length === 0) return events.filter((e) => deviceIds.includes(e.data.deviceId as string));
    events.push(...page.events);
    after = `&after=${page.next}`;
  }
}

/** Every event recorded so far, oldest first, read through GET /v1/events once settled. */
async function everything(gw: RunningGateway): Promise<EventEnvelope[]> {
  await eventsSettled();
  const events: EventEnvelope[] = [];
  for (let after = '', page: { events: EventEnvelope[]; next: string }; ; after = `&after=${page.next}`) {
    page = (await (await api(gw.url, `/v1/events?limit=1000${after}`)).json()) as { events: EventEnvelope[]; next: string };
    if (page.events.length === 0) return events;
    events.push(...page.events);
  }
}

/** Waits until the receiver accepted every one of `ids`. */
async function receives(receiver: WebhookReceiver, ids: string[], timeoutMs = 60_000): Promise<void> {
  await waitFor(() => {
    const got = new Set(receiver.acceptedIds());
    return ids.every((id) => got.has(id));
  }, timeoutMs, 50).catch(() => {
    const got = new Set(receiver.acceptedIds());
    throw new Error(`receiver lacks ${ids.filter((id) => !got.has(id)).length} of ${ids.length} events`);
  });
}

const ajv = new Ajv({ strict: false, allErrors: true });
/** Every body the receiver got matches its type's message in /asyncapi.json (channel `webhook`). */
function expectDescribed(receiver: WebhookReceiver): void {
  const messages = ASYNCAPI.components.messages as unknown as Record<string, { payload: object }>;
  for (const { event } of receiver.requests) {
    const message = messages[event.type];
    expect([event.type, message !== undefined]).toEqual([event.type, true]);
    const validate = ajv.compile(message!.payload);
    expect({ event, valid: validate(event), errors: validate.errors ?? [] }).toEqual({ event, valid: true, errors: [] });
  }
}

/** Per device, the order in which the receiver first accepted each event equals log order. */
function expectLogOrderPerDevice(receiver: WebhookReceiver, log: EventEnvelope[]): void {
  const devices = [...new Set(log.map((e) => e.data.deviceId as string))];
  for (const d of devices) {
    const expected = log.filter((e) => e.data.deviceId === d).map((e) => e.id);
    expect([d, receiver.acceptedIds((e) => e.data.deviceId === d && e.type === 'notification.expired')]).toEqual([d, expected]);
  }
}

/**
 * Webhook delivery with real gateway processes on real Redis and real HTTP receivers on loopback
 * that verify every request with the Standard Webhooks library.
 */
describe('webhooks (Redis, separate gateway processes)', () => {
  const redis = new Redis(testRedisUrl());
  const prefixes: string[] = [];
  const gateways: RunningGateway[] = [];
  const receivers: WebhookReceiver[] = [];
  const sockets: Socket[] = [];

  const receiver = async () => {
    const r = await new WebhookReceiver(SECRET).start();
    receivers.push(r);
    return r;
  };
  const gateway = async (id: string, prefix: string, urls: string[], env: Record<string, string> = {}) => {
    const gw = await startGateway(id, {
      REDIS_URL: testRedisUrl(),
      REDIS_PREFIX: prefix,
      WEBHOOK_URL: urls.join(','),
      WEBHOOK_SECRET: SECRET,
      PRESENCE_EVENT_GRACE_MS: '0',
      ...env,
    });
    gateways.push(gw);
    return gw;
  };
  const kill9 = async (gw: RunningGateway) => {
    gw.process.child.kill('SIGKILL');
    await gw.process.exited;
  };

  afterEach(async () => {
    sockets.splice(0).forEach((s) => s.disconnect());
    for (const gw of gateways.splice(0)) {
      if (gw.process.child.exitCode === null) gw.process.child.kill('SIGKILL');
      await gw.process.exited;
    }
    await Promise.all(receivers.splice(0).map((r) => r.stop()));
  });
  afterAll(async () => {
    for (const p of prefixes) await deleteKeys(redis, p);
    redis.disconnect();
  });
  const newPrefix = (name: string) => {
    const p = uniquePrefix(`webhooks-${name}`);
    prefixes.push(p);
    return p;
  };

  it('signs every POST, keeps order per device through failures, timeouts and 429s across two instances, and filters by WEBHOOK_EVENTS', async () => {
    const prefix = newPrefix('order');
    const r = await receiver();
    // Deterministic trouble: by the event id's last digit, a first attempt fails, times out, or is throttled.
    r.answer = (event, attempt) => {
      const digit = Number(event.id.slice(-1)) + Number(event.id.split('-')[0]!.slice(-1));
      if (attempt === 1 && digit % 5 === 1) return { status: 500 };
      if (attempt === 1 && digit % 5 === 2) return 'hang';
      if (attempt === 1 && digit % 5 === 3) return { status: 429, headers: { 'retry-after': '1' } };
      return { status: 204 };
    };
    const env = { WEBHOOK_EVENTS: 'notification.*', WEBHOOK_TIMEOUT_MS: '1000' };
    const [a, b] = await Promise.all([gateway('wh-a', prefix, [r.url], env), gateway('wh-b', prefix, [r.url], env)]);
    // A device that connects records device.online and user.online: filtered out.
    const socket = connectDevice(a.url, deviceToken({ sub: 'wh-user', deviceId: 'wh-live' }));
    sockets.push(socket);
    await nextEvent(socket, 'ready');
    const devices = Array.from({ length: 8 }, (_, i) => `wh-d${i}`);
    for (let round = 0; round < 12; round++) await expire(round % 2 ? b : a, devices);
    const log = await recorded(a, devices);
    expect(log).toHaveLength(96);
    await receives(r, log.map((e) => e.id));
    expectLogOrderPerDevice(r, log);
    expect(r.unverified).toEqual([]);
    expectDescribed(r);
    for (const req of r.requests) {
      expect(req.headers['webhook-id']).toBe(req.event.id);
      expect(req.headers['content-type']).toBe('application/json');
      expect(Math.abs(Number(req.headers['webhook-timestamp']) * 1000 - req.at)).toBeLessThan(60_000);
      expect(Object.keys(req.event).sort()).toEqual(['data', 'id', 'timestamp', 'type']);
    }
    // Everything failed once before it went through, and each kind of failure was counted.
    const failures = async (reason: string) => (await metric(a.url, `push_gateway_webhook_failed_attempts_total{url="${r.url}",reason="${reason}"}`)) + (await metric(b.url, `push_gateway_webhook_failed_attempts_total{url="${r.url}",reason="${reason}"}`));
    expect(await failures('500')).toBeGreaterThan(0);
    expect(await failures('timeout')).toBeGreaterThan(0);
    expect(await failures('429')).toBeGreaterThan(0);
    // Delivered by the holder of the partition lease (one partition on a single Redis: one instance; the other takes over if it dies).
    expect((await metric(a.url, DELIVERED(r.url))) + (await metric(b.url, DELIVERED(r.url)))).toBeGreaterThanOrEqual(log.length);
    // The device events recorded before all of these never went to this URL.
    expect(r.requests.filter((q) => !q.event.type.startsWith('notification.'))).toEqual([]);
  }, 120_000);

  it('a dead URL and a 410 do not hold up a healthy one; the 410 stops the URL on every instance until a start; nothing is lost across kill -9 of both', async () => {
    const prefix = newPrefix('dead');
    const healthy = await receiver();
    const gone = await receiver();
    const down = await receiver();
    await down.stop(); // its port now refuses connections
    gone.answer = () => ({ status: 410 });
    const urls = [healthy.url, gone.url, down.url];
    const [a, b] = await Promise.all([gateway('wh-dead-a', prefix, urls), gateway('wh-dead-b', prefix, urls)]);

    await expire(a, ['wh-x']);
    await waitFor(() => gone.requests.length > 0, 15_000);
    await metricReaches(a.url, DISABLED(gone.url), 1, 15_000);
    await metricReaches(b.url, DISABLED(gone.url), 1, 15_000);
    for (let i = 0; i < 5; i++) await expire(i % 2 ? a : b, ['wh-x', 'wh-y']);
    const log = await recorded(a, ['wh-x', 'wh-y']);
    expect(log).toHaveLength(11);
    // The healthy receiver gets everything, in order, while the other two fail.
    await receives(healthy, log.map((e) => e.id), 30_000);
    expectLogOrderPerDevice(healthy, log);
    expect(gone.requests).toHaveLength(1);
    // The dead URL's backlog ages while the healthy one has none (measured every 5 s by each
    // instance, over the partitions it holds: a measurement from before the healthy one caught up
    // may still show it behind).
    const backlog = async (url: string) => Math.max(...(await Promise.all([a, b].map((gw) => metric(gw.url, `push_gateway_webhook_backlog_age_seconds{url="${url}"}`)))));
    await waitFor(async () => (await backlog(down.url)) > 0 && (await backlog(healthy.url)) === 0, 15_000);
    expect((await metric(a.url, `push_gateway_webhook_failed_attempts_total{url="${down.url}",reason="error"}`)) + (await metric(b.url, `push_gateway_webhook_failed_attempts_total{url="${down.url}",reason="error"}`))).toBeGreaterThan(0);

    // Both instances die hard while `down` is down and `gone` is disabled; then a new one starts.
    await Promise.all([kill9(a), kill9(b)]);
    gone.answer = () => ({ status: 200 });
    await down.start();
    const c = await gateway('wh-dead-c', prefix, urls);
    await expire(c, ['wh-x']);
    const all = await recorded(c, ['wh-x', 'wh-y']);
    expect(all).toHaveLength(12);
    await receives(down, all.map((e) => e.id));
    await receives(gone, all.map((e) => e.id));
    expectLogOrderPerDevice(down, all);
    expectLogOrderPerDevice(gone, all);
    expect(await metric(c.url, DISABLED(gone.url))).toBe(0);
    expect([healthy.unverified, gone.unverified, down.unverified]).toEqual([[], [], []]);
  }, 150_000);

  it('delivers every event type, and offline reasons produced for real across three processes, exactly as the pull API records them', async () => {
    const prefix = newPrefix('all');
    const r = await receiver();
    const socket = (gw: RunningGateway, deviceId: string, sub = 'wh-all-user') => {
      const s = connectDevice(gw.url, deviceToken({ sub, deviceId }));
      sockets.push(s);
      return s;
    };
    const beat = (s: Socket) => {
      const timer = setInterval(() => s.connected && s.emit('heartbeat', {}, () => {}), 150);
      s.on('disconnect', () => clearInterval(timer));
      return timer;
    };
    const timers: NodeJS.Timeout[] = [];
    try {
      // a: devices that never beat stay online (10 s interval); b and c: a 400 ms interval (1 s ttl).
      const [a, b, c] = await Promise.all([
        gateway('wh-all-a', prefix, [r.url], { HEARTBEAT_INTERVAL_MS: '10000', ACK_TIMEOUT_MS: '500' }),
        gateway('wh-all-b', prefix, [r.url]),
        gateway('wh-all-c', prefix, [r.url]),
      ]);
      const acking = socket(a, 'wh-all-ack');
      acking.on('notification', (_payload: unknown, ack: () => void) => ack());
      await nextEvent(acking, 'ready');
      const silent = socket(a, 'wh-all-silent');
      await nextEvent(silent, 'ready');
      expect((await api(a.url, '/v1/notifications', { method: 'POST', json: { deviceIds: ['wh-all-ack', 'wh-all-silent'], data: { n: 1 } } })).status).toBe(202);
      await waitFor(() => r.acceptedIds((e) => e.type === 'notification.unacked').length === 1, 15_000);
      const again = socket(a, 'wh-all-silent'); // replaced
      await nextEvent(again, 'ready');
      expect((await api(a.url, '/v1/devices/wh-all-ack/session', { method: 'DELETE' })).status).toBe(204); // kicked
      again.disconnect(); // client_close, and the user's last device: user.offline
      await expire(a, ['wh-all-never-seen']);
      const timingOut = socket(b, 'wh-all-timeout', 'wh-all-b'); // never beats: heartbeat_timeout
      await nextEvent(timingOut, 'ready');
      const drained = socket(b, 'wh-all-drained', 'wh-all-b');
      timers.push(beat(drained));
      await nextEvent(drained, 'ready');
      const lost = socket(c, 'wh-all-lost', 'wh-all-c');
      timers.push(beat(lost));
      await nextEvent(lost, 'ready');
      await waitFor(() => r.acceptedIds((e) => e.data.reason === 'heartbeat_timeout').length === 1, 15_000);
      b.process.child.kill('SIGTERM'); // server_shutdown
      await b.process.exited;
      await kill9(c); // instance_lost, found by a
      await waitFor(() => r.acceptedIds((e) => e.data.reason === 'instance_lost').length === 1, 30_000);

      const log = await everything(a);
      await receives(r, log.map((e) => e.id));
      expect(new Set(r.accepted.map((q) => q.event.type))).toEqual(new Set(EVENT_TYPES));
      const reasons = new Set(r.accepted.filter((q) => q.event.type === 'device.offline').map((q) => q.event.data.reason));
      expect([...reasons].sort()).toEqual(SESSION_REASONS);
      // Byte for byte the pull API's envelopes, and each matches its AsyncAPI message.
      const byId = new Map(log.map((e) => [e.id, e]));
      for (const q of r.accepted) expect(q.event).toEqual(byId.get(q.event.id));
      expectDescribed(r);
      expect(r.unverified).toEqual([]);
    } finally {
      timers.forEach(clearInterval);
    }
  }, 120_000);

  it("delivers the offline reasons a device's own conduct causes (token_expired, slow_consumer, rate_limited), produced for real, as the pull API records them, in order per device", async () => {
    // With the test above, every offline reason of the contract reaches a receiver.
    expect([...SESSION_REASONS, ...CONDUCT_REASONS].sort()).toEqual([...OFFLINE_REASONS].sort());
    const prefix = newPrefix('conduct');
    const r = await receiver();
    // Nobody beats here (a 10 s interval): only its own conduct ends a session.
    const gw = await gateway('wh-conduct', prefix, [r.url], {
      HEARTBEAT_INTERVAL_MS: '10000',
      TOKEN_EXPIRY_GRACE_MS: '0',
      SOCKET_EVENTS_PER_SECOND: '5',
      SOCKET_MAX_BUFFERED_BYTES: '16384',
      SLOW_CONSUMER_GRACE_MS: '1000',
    });
    const offlines = () => r.accepted.filter((q) => q.event.type === 'device.offline');
    const raws: RawDevice[] = [];
    let flooding: NodeJS.Timeout | undefined;
    try {
      // token_expired: a token that runs out 8 s from now, no grace; the sweep ends the session.
      const expiring = connectDevice(gw.url, deviceToken({ sub: 'wh-conduct-token', deviceId: 'wh-c-token', exp: Math.floor(Date.now() / 1000) + 8 }, {}));
      sockets.push(expiring);
      await nextEvent(expiring, 'ready');
      const expired = nextEvent(expiring, 'session_ended', 60_000);

      // rate_limited: a socket far over its budget (200 packets a second against 5) until it is ended.
      const flooder = await RawDevice.connect(gw.url, { token: deviceToken({ sub: 'wh-conduct-flood', deviceId: 'wh-c-flood' }) });
      raws.push(flooder);
      const limited = flooder.next('session_ended', 60_000);
      flooding = setInterval(() => {
        for (let i = 0; i < 20 && flooder.ws.readyState === flooder.ws.OPEN; i++) flooder.send('42["launch_missiles"]');
      }, 100);

      // slow_consumer: a device that stops reading while 40 pushes of 3 KB come for it (a 16 KB budget).
      const stuck = await RawDevice.connect(gw.url, { token: deviceToken({ sub: 'wh-conduct-slow', deviceId: 'wh-c-slow' }) });
      raws.push(stuck);
      stuck.pause();
      const pad = 'x'.repeat(3_000);
      for (let i = 0; i < 40; i++) {
        const res = await api(gw.url, '/v1/notifications', { method: 'POST', json: { deviceIds: ['wh-c-slow'], data: { i, pad }, ttl: 600 } });
        expect(res.status).toBe(202);
      }

      expect(await expired).toMatchObject({ reason: 'token_expired' });
      expect((await limited).payload).toMatchObject({ reason: 'rate_limited' });
      await waitFor(() => offlines().length === 3, 60_000).catch(() => {
        throw new Error(`offlines received: ${JSON.stringify(offlines().map((q) => q.event.data))}\n${gw.process.output()}`);
      });
    } finally {
      clearInterval(flooding);
      raws.forEach((d) => d.close());
    }
    expect(Object.fromEntries(offlines().map((q) => [q.event.data.deviceId, q.event.data.reason]))).toEqual({
      'wh-c-token': 'token_expired',
      'wh-c-flood': 'rate_limited',
      'wh-c-slow': 'slow_consumer',
    });

    // Everything the log holds so far reaches the receiver (the stuck device's pushes may still add unacked events).
    await receives(r, (await everything(gw)).map((e) => e.id));
    const accepted = [...r.accepted];
    const log = await everything(gw); // read after: it holds everything the receiver had
    const byId = new Map(log.map((e) => [e.id, e]));
    // Each body is the pull API's envelope, verified with the secret, and matches its AsyncAPI message.
    for (const q of accepted) expect(q.event).toEqual(byId.get(q.event.id));
    expect(r.unverified).toEqual([]);
    expectDescribed(r);
    // Per device, what the receiver accepted first is the device's log, in log order, from its start.
    for (const d of ['wh-c-token', 'wh-c-flood', 'wh-c-slow']) {
      const got = [...new Set(accepted.filter((q) => q.event.data.deviceId === d).map((q) => q.event.id))];
      const inLog = log.filter((e) => e.data.deviceId === d).map((e) => e.id);
      expect([d, got]).toEqual([d, inLog.slice(0, got.length)]);
      const presence = got.map((id) => byId.get(id)!).filter((e) => e.type.startsWith('device.'));
      expect([d, presence.map((e) => [e.type, e.data.seq])]).toEqual([d, [['device.online', 1], ['device.offline', 2]]]);
    }
  }, 120_000);

  it('drops an event after WEBHOOK_RETRY_HOURS of failures, counts it, and lets the next event of its device go', async () => {
    const prefix = newPrefix('drop');
    const r = await receiver();
    let doomed: string | undefined;
    r.answer = (event) => {
      doomed ??= event.id; // the device's first event is refused every time
      return event.id === doomed ? { status: 500 } : { status: 204 };
    };
    // 0.001 h = 3.6 s: a few attempts 1 to 2 s apart, then the drop.
    const gw = await gateway('wh-drop', prefix, [r.url], { WEBHOOK_RETRY_HOURS: '0.001' });
    await expire(gw, ['wh-drop-1']);
    await expire(gw, ['wh-drop-1']);
    const log = await recorded(gw, ['wh-drop-1']);
    expect(log).toHaveLength(2);
    await receives(r, [log[1]!.id], 30_000);
    expect(doomed).toBe(log[0]!.id);
    expect(r.requests.filter((q) => q.event.id === doomed).length).toBeGreaterThanOrEqual(2);
    expect(r.acceptedIds()).toEqual([log[1]!.id]);
    expect(await metric(gw.url, `push_gateway_webhook_dropped_total{url="${r.url}"}`)).toBe(1);
  }, 60_000);

  it("takes over the events of an instance killed mid-delivery, and its intake, and keeps the device's order", async () => {
    const prefix = newPrefix('takeover');
    const r = await receiver();
    r.answer = () => 'hang';
    const a = await gateway('wh-take-a', prefix, [r.url], { WEBHOOK_TIMEOUT_MS: '60000' });
    await expire(a, ['wh-t']);
    await waitFor(() => r.requests.length === 1, 15_000); // a holds the only claim, waiting for an answer
    const b = await gateway('wh-take-b', prefix, [r.url], { WEBHOOK_TIMEOUT_MS: '60000' });
    await expire(b, ['wh-t']);
    await kill9(a);
    r.answer = () => ({ status: 204 });
    await expire(b, ['wh-t']);
    const log = await recorded(b, ['wh-t']);
    expect(log).toHaveLength(3);
    await receives(r, log.map((e) => e.id), 30_000);
    expectLogOrderPerDevice(r, log);
  }, 90_000);
});

describe('webhooks (embedded store)', () => {
  let gw: RunningGateway | undefined;
  let r: WebhookReceiver | undefined;
  afterEach(async () => {
    if (gw && gw.process.child.exitCode === null) gw.process.child.kill('SIGKILL');
    await gw?.process.exited;
    await r?.stop();
  });

  it('delivers signed, in order per device, through failures; a 410 disables the URL', async () => {
    r = await new WebhookReceiver(SECRET).start();
    const gone = await new WebhookReceiver(SECRET).start();
    gone.answer = () => ({ status: 410 });
    r.answer = (event, attempt) => (attempt === 1 && Number(event.id.slice(-1)) % 3 === 0 ? { status: 503, headers: { 'retry-after': '1' } } : { status: 200 });
    gw = await startGateway('wh-embedded', { WEBHOOK_URL: `${r.url},${gone.url}`, WEBHOOK_SECRET: SECRET, WEBHOOK_EVENTS: 'notification.expired,device.*', PRESENCE_EVENT_GRACE_MS: '0' });
    const socket = connectDevice(gw.url, deviceToken({ sub: 'wh-e-user', deviceId: 'wh-e-live' }));
    await nextEvent(socket, 'ready');
    socket.disconnect();
    const devices = ['wh-e1', 'wh-e2', 'wh-e3'];
    for (let i = 0; i < 6; i++) await expire(gw, devices);
    const log = await recorded(gw, devices);
    expect(log).toHaveLength(18);
    await receives(r, log.map((e) => e.id), 60_000);
    expectLogOrderPerDevice(r, log);
    await waitFor(() => r!.acceptedIds((e) => e.type === 'device.offline' && e.data.deviceId === 'wh-e-live').length === 1, 15_000);
    expect(r.requests.filter((q) => q.event.type.startsWith('user.'))).toEqual([]);
    expect(r.unverified).toEqual([]);
    expectDescribed(r);
    await metricReaches(gw.url, DISABLED(gone.url), 1, 15_000);
    // What was in flight together with the 410 reached it; nothing after: a later round reaches r only.
    const before = gone.requests.length;
    await expire(gw, devices);
    await receives(r, (await recorded(gw, devices)).map((e) => e.id), 30_000);
    expect(gone.requests).toHaveLength(before);
    await gone.stop();
  }, 90_000);
});

describe("the README's webhook receiver", () => {
  it('verifies what the gateway sends, refuses a forged request, and applies each event once', async () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    const block = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.startsWith('// receiver.mjs:'));
    expect(block).toBeDefined();
    const port = await freePort();
    // Run from the repository so that `standardwebhooks` resolves as it would after `npm install standardwebhooks`.
    const receiver = start(process.execPath, ['--input-type=module', '-e', block!], { cwd: REPO, env: { ...process.env, WEBHOOK_SECRET: SECRET, PORT: String(port) } });
    const url = `http://127.0.0.1:${port}/`;
    let gw: RunningGateway | undefined;
    try {
      await waitFor(async () => (await fetch(url, { method: 'POST', body: '{}' }).catch(() => null))?.status === 400, 15_000);
      gw = await startGateway('wh-readme', { WEBHOOK_URL: url, WEBHOOK_SECRET: SECRET, PRESENCE_EVENT_GRACE_MS: '0' });
      await expire(gw, ['wh-readme-1']);
      await receiver.waitForLine(/^notification\.expired \{.*"deviceId":"wh-readme-1"/m, 15_000);
      // A copy signed with another secret is refused.
      const forged = await fetch(url, { method: 'POST', headers: { 'webhook-id': '1-0', 'webhook-timestamp': String(Math.floor(Date.now() / 1000)), 'webhook-signature': 'v1,AAAA' }, body: '{}' });
      expect(forged.status).toBe(400);
      expect(receiver.stderr()).toBe('');
    } finally {
      if (gw) {
        gw.process.child.kill('SIGKILL');
        await gw.process.exited;
      }
      receiver.child.kill();
    }
  }, 60_000);
});

describe('webhooks on a Redis Cluster', () => {
  it('delivers in order from a gateway process on a real three-master cluster (keys partitioned over every master)', async () => {
    const cluster = await startRedisCluster();
    const r = await new WebhookReceiver(SECRET).start();
    let gw: RunningGateway | undefined;
    try {
      gw = await startGateway('wh-cluster', { REDIS_CLUSTER_NODES: cluster.spec, WEBHOOK_URL: r.url, WEBHOOK_SECRET: SECRET, PRESENCE_EVENT_GRACE_MS: '0' });
      r.answer = (event, attempt) => (attempt === 1 && event.id.endsWith('1') ? { status: 500 } : { status: 204 });
      for (let i = 0; i < 4; i++) await expire(gw, ['wh-cl-1', 'wh-cl-2']);
      // On a Cluster the pull API shows an event once every partition's floor has passed it (about 1-1.5 s).
      let log: EventEnvelope[] = [];
      await waitFor(async () => (log = await recorded(gw!, ['wh-cl-1', 'wh-cl-2'])).length >= 8, 10_000);
      expect(log).toHaveLength(8);
      await receives(r, log.map((e) => e.id), 60_000).catch((err: Error) => {
        throw new Error(`${err.message}\n${gw!.process.output()}`);
      });
      expectLogOrderPerDevice(r, log);
      expect(r.unverified).toEqual([]);
    } finally {
      if (gw) {
        gw.process.child.kill('SIGKILL');
        await gw.process.exited;
      }
      await r.stop();
      cluster.kill();
    }
  }, 90_000);
});
