import Ajv from 'ajv';
import { ASYNCAPI } from '../src/docs/asyncapi';
import type { AuthReply, Notification as ClientNotification, ReadyPayload as ClientReady, SessionEnded as ClientSessionEnded } from '../client/src';
import { CLIENT_EVENTS } from '../src/channel/client-events';
import { AuthAck, NotificationPayload, ReadyPayload, SERVER_EVENTS, SessionEndedPayload } from '../src/channel/socket-events';
import { api, connectDevice, nextEvent, startTestApp, TestApp } from './support/app';
import { deleteKeys, testRedisUrl, uniquePrefix } from './support/redis';
import { deviceToken } from './support/tokens';
import Redis from 'ioredis';
import { Socket } from 'socket.io-client';

type Json = Record<string, any>;

// The client SDK ships its own copy of the protocol types; tsc (part of npm test) fails here if
// the two drift apart in either direction.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const protocolInSync: [
  Same<ClientNotification, NotificationPayload>,
  Same<ClientReady, ReadyPayload>,
  Same<ClientSessionEnded, SessionEndedPayload>,
  Same<Extract<AuthReply, { ok: true }>, AuthAck>,
] = [true, true, true, true];
const messages = ASYNCAPI.components.messages as unknown as Record<string, { payload?: object; 'x-ack'?: object }>;
/** A described message, failing loudly when it is missing (so a check cannot pass against no schema). */
function message(name: string): { payload?: object; 'x-ack'?: object } {
  const found: { payload?: object; 'x-ack'?: object } | undefined = messages[name];
  if (!found) throw new Error(`no message "${name}" in the AsyncAPI document`);
  return found;
}
const names = (side: 'publish' | 'subscribe') =>
  ASYNCAPI.channels['/'][side].message.oneOf.map((m) => messages[m.$ref.split('/').pop()!] && m.$ref.split('/').pop()).sort();

/** Keeps /asyncapi.json true: every event is described, and live payloads match the schemas. */
describe('AsyncAPI description of the socket protocol', () => {
  const ajv = new Ajv({ strict: false, allErrors: true });
  const check = (schema: object | undefined, value: unknown) => {
    const validate = ajv.compile(schema ?? {});
    expect({ valid: validate(value), errors: validate.errors ?? [] }).toEqual({ valid: true, errors: [] });
  };
  const prefix = uniquePrefix('asyncapi');
  let gw: TestApp;
  const sockets: Socket[] = [];
  const open = (deviceId: string, topics: string[] = []) => {
    const s = connectDevice(gw.url, deviceToken({ sub: 'spec-user', deviceId, topics }));
    sockets.push(s);
    return s;
  };

  beforeAll(async () => {
    gw = await startTestApp({ REDIS_URL: testRedisUrl(), REDIS_PREFIX: prefix });
  });
  afterAll(async () => {
    sockets.forEach((s) => s.disconnect());
    await gw.close();
    const redis = new Redis(testRedisUrl());
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  it('names every event the code knows, in both directions', () => {
    expect(protocolInSync).toEqual([true, true, true, true]);
    expect(names('publish')).toEqual([...CLIENT_EVENTS].sort());
    expect(names('subscribe')).toEqual(Object.keys(SERVER_EVENTS).sort());
  });

  it('is served at /asyncapi.json', async () => {
    const served = (await (await fetch(`${gw.url}/asyncapi.json`)).json()) as Json;
    expect(served).toEqual(JSON.parse(JSON.stringify(ASYNCAPI)));
  });

  it('matches what a live gateway sends and accepts', async () => {
    const socket = open('spec-dev', ['news']);
    const ready = await nextEvent<Json>(socket, 'ready');
    check(messages.ready.payload, ready);

    const heartbeat = { interval: 1_000, network: 'wifi:spec', appState: 'foreground' };
    check(messages.heartbeat.payload, heartbeat);
    check(messages.heartbeat['x-ack'], await socket.timeout(2_000).emitWithAck('heartbeat', heartbeat));
    check(messages.heartbeat['x-ack'], await socket.timeout(2_000).emitWithAck('heartbeat', { interval: 'x' }));
    check(messages.heartbeat['x-ack'], await socket.timeout(2_000).emitWithAck('nonsense', {}));

    check(messages.subscribe.payload, { topics: ['news'] });
    check(messages.subscribe['x-ack'], await socket.timeout(2_000).emitWithAck('subscribe', { topics: ['news'] }));
    check(messages.subscribe['x-ack'], await socket.timeout(2_000).emitWithAck('subscribe', { topics: ['secret'] }));
    check(messages.unsubscribe['x-ack'], await socket.timeout(2_000).emitWithAck('unsubscribe', { topics: ['news'] }));

    const refresh = { token: deviceToken({ sub: 'spec-user', deviceId: 'spec-dev', topics: ['news'] }) };
    const auth = message('auth');
    check(auth.payload, refresh);
    check(auth['x-ack'], await socket.timeout(2_000).emitWithAck('auth', refresh));
    check(auth['x-ack'], await socket.timeout(2_000).emitWithAck('auth', { token: 'garbage' }));
    check(auth['x-ack'], await socket.timeout(2_000).emitWithAck('auth', { token: deviceToken({ sub: 'spec-user', deviceId: 'other' }) }));

    const notified = nextEvent<Json>(socket, 'notification');
    await api(gw.url, '/v1/notifications', { method: 'POST', json: { deviceIds: ['spec-dev'], data: { a: 1 }, title: 't', body: 'b', ttl: 60, collapseKey: 'k' } });
    check(messages.notification.payload, await notified);

    const replaced = nextEvent<Json>(socket, 'session_replaced');
    const twin = open('spec-dev');
    const twinReady = nextEvent(twin, 'ready');
    check(messages.session_replaced.payload, await replaced);
    await twinReady;

    const refused = connectDevice(gw.url, 'garbage');
    sockets.push(refused);
    const err = await nextEvent<Error & { data: unknown }>(refused, 'connect_error');
    check(ASYNCAPI.components.schemas.connectError, err.data);

    const draining = nextEvent<Json>(twin, 'server_draining');
    await gw.app.close();
    check(messages.server_draining.payload, await draining);
    gw = await startTestApp({ REDIS_URL: testRedisUrl(), REDIS_PREFIX: prefix }); // for afterAll
  });
});
