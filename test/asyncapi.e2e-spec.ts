import Ajv from 'ajv';
import { ASYNCAPI } from '../src/docs/asyncapi';
import type { AuthReply, Notification as ClientNotification, ReadyPayload as ClientReady, SessionEnded as ClientSessionEnded } from '../client/src';
import { CLIENT_EVENTS } from '../src/channel/client-events';
import { EVENT_TYPES } from '../src/events/event.types';
import { AuthAck, NotificationPayload, ReadyPayload, SERVER_EVENTS, SessionEndedPayload } from '../src/channel/socket-events';
import { api, connectDevice, nextEvent, startTestApp, TestApp, waitFor } from './support/app';
import { deleteKeys, testRedisUrl, uniquePrefix } from './support/redis';
import { deviceToken } from './support/tokens';
import Redis from 'ioredis';
import { Socket } from 'socket.io-client';

type Json = Record<string, any>;

// The client SDK ships its own copy of the protocol types; tsc (part of npm test) fails here if
// the two drift apart in either direction. A compile-time check only: there is nothing to run.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const _protocolInSync: [
  Same<ClientNotification, NotificationPayload>,
  Same<ClientReady, ReadyPayload>,
  Same<ClientSessionEnded, SessionEndedPayload>,
  Same<Extract<AuthReply, { ok: true }>, AuthAck>,
] = [true, true, true, true];
const messages = ASYNCAPI.components.messages as unknown as Record<string, { name?: string; payload?: object; 'x-ack'?: object }>;
/** One message of the document; a missing one fails the test that needs it. */
const msg = (name: string) => {
  const m = messages[name];
  if (!m) throw new Error(`/asyncapi.json has no message ${name}`);
  return m;
};
/** The message names a channel side lists; a $ref to a message that is not there shows as "missing: <ref>". */
const listed = (side: 'publish' | 'subscribe') =>
  ASYNCAPI.channels['/'][side].message.oneOf
    .map((m) => {
      const key = /^#\/components\/messages\/(.+)$/.exec(m.$ref)?.[1];
      return key && messages[key] ? key : `missing: ${m.$ref}`;
    })
    .sort();

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

  it('describes exactly the events the code knows, in both directions', () => {
    const clientEvents = [...CLIENT_EVENTS].sort();
    const serverEvents = Object.keys(SERVER_EVENTS).sort();
    // Each event the gateway accepts or sends is listed on its side, and nothing else is.
    expect(listed('publish')).toEqual(clientEvents);
    expect(listed('subscribe')).toEqual(serverEvents);
    // No message is described without being listed on a channel, and each one carries its own name.
    const webhookEvents = ASYNCAPI.channels.webhook.subscribe.message.oneOf.map((m) => m.$ref.replace('#/components/messages/', ''));
    expect(webhookEvents.sort()).toEqual([...EVENT_TYPES].sort());
    expect(Object.keys(messages).sort()).toEqual([...clientEvents, ...serverEvents, ...webhookEvents].sort());
    for (const [key, message] of Object.entries(messages)) expect({ key, name: message.name }).toEqual({ key, name: key });
  });

  it('is served at /asyncapi.json', async () => {
    const served = (await (await fetch(`${gw.url}/asyncapi.json`)).json()) as Json;
    expect(served).toEqual(JSON.parse(JSON.stringify(ASYNCAPI)));
  });

  it('matches what a live gateway sends and accepts', async () => {
    const socket = open('spec-dev', ['news']);
    const ready = await nextEvent<Json>(socket, 'ready');
    check(msg('ready').payload, ready);

    const heartbeat = { interval: 1_000, network: 'wifi:spec', appState: 'foreground' };
    check(msg('heartbeat').payload, heartbeat);
    check(msg('heartbeat')['x-ack'], await socket.timeout(2_000).emitWithAck('heartbeat', heartbeat));
    check(msg('heartbeat')['x-ack'], await socket.timeout(2_000).emitWithAck('heartbeat', { interval: 'x' }));
    check(msg('heartbeat')['x-ack'], await socket.timeout(2_000).emitWithAck('nonsense', {}));

    check(msg('subscribe').payload, { topics: ['news'] });
    check(msg('subscribe')['x-ack'], await socket.timeout(2_000).emitWithAck('subscribe', { topics: ['news'] }));
    check(msg('subscribe')['x-ack'], await socket.timeout(2_000).emitWithAck('subscribe', { topics: ['secret'] }));
    check(msg('unsubscribe')['x-ack'], await socket.timeout(2_000).emitWithAck('unsubscribe', { topics: ['news'] }));

    const refresh = { token: deviceToken({ sub: 'spec-user', deviceId: 'spec-dev', topics: ['news'] }) };
    check(msg('auth').payload, refresh);
    check(msg('auth')['x-ack'], await socket.timeout(2_000).emitWithAck('auth', refresh));
    check(msg('auth')['x-ack'], await socket.timeout(2_000).emitWithAck('auth', { token: 'garbage' }));
    check(msg('auth')['x-ack'], await socket.timeout(2_000).emitWithAck('auth', { token: deviceToken({ sub: 'spec-user', deviceId: 'other' }) }));

    const notified = new Promise<Json>((resolve) => socket.once('notification', (n: Json, ack: () => void) => (ack(), resolve(n))));
    const sent = (await (
      await api(gw.url, '/v1/notifications', { method: 'POST', json: { deviceIds: ['spec-dev'], data: { a: 1 }, title: 't', body: 'b', ttl: 60, collapseKey: 'k' } })
    ).json()) as Json;
    check(msg('notification').payload, await notified);
    // Settled before the takeover: an unacked push would be sent again to the twin, and its ack
    // timer would outlive the app.
    await waitFor(async () => ((await (await api(gw.url, `/v1/notifications/${sent.id}`)).json()) as Json).targets[0].status === 'delivered');

    const replaced = nextEvent<Json>(socket, 'session_replaced');
    const twin = open('spec-dev');
    const twinReady = nextEvent(twin, 'ready');
    check(msg('session_replaced').payload, await replaced);
    await twinReady;

    const refused = connectDevice(gw.url, 'garbage');
    sockets.push(refused);
    const err = await nextEvent<Error & { data: unknown }>(refused, 'connect_error');
    check(ASYNCAPI.components.schemas.connectError, err.data);

    const kicked = open('spec-kicked');
    await nextEvent(kicked, 'ready');
    const ended = nextEvent<Json>(kicked, 'session_ended');
    expect((await api(gw.url, '/v1/devices/spec-kicked/session', { method: 'DELETE' })).status).toBe(204);
    check(msg('session_ended').payload, await ended);

    const draining = nextEvent<Json>(twin, 'server_draining');
    await gw.app.close();
    check(msg('server_draining').payload, await draining);
    gw = await startTestApp({ REDIS_URL: testRedisUrl(), REDIS_PREFIX: prefix }); // for afterAll
  });
});
