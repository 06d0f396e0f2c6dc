import { CLIENT_EVENT_SCHEMAS, CLIENT_EVENTS } from '../channel/client-events';
import { ERROR_CODES, RECONNECT_AFTER, SERVER_EVENTS } from '../channel/socket-events';
import { ID } from '../common/patterns';
import { EVENT_ENVELOPE_SCHEMAS } from '../events/event-schemas';
import { EVENT_TYPES } from '../events/event.types';

/**
 * The device socket protocol as AsyncAPI 2.6, served at /asyncapi.json. Acks are described with
 * the `x-ack` extension (Socket.IO acknowledgements have no AsyncAPI 2 keyword). Client payloads
 * are the very schemas the gateway validates with (channel/client-events.ts); the e2e test
 * validates live server payloads against these schemas and checks that every event is here.
 * The channel `webhook` describes what the gateway POSTs to WEBHOOK_URL (the same envelopes as
 * GET /v1/events), one message per event type (events/event-schemas.ts).
 */
const id = { type: 'string', pattern: ID.pattern };
const ref = (name: string) => ({ $ref: `#/components/messages/${name}` });
const ms = { type: 'integer', description: 'epoch milliseconds' };
const errorAck = {
  type: 'object',
  required: ['ok', 'error'],
  additionalProperties: false,
  properties: {
    ok: { const: false },
    error: {
      type: 'object',
      required: ['code', 'message'],
      additionalProperties: false,
      properties: {
        code: { enum: Object.keys(ERROR_CODES) },
        message: { type: 'string' },
        topics: { type: 'array', items: { type: 'string' }, description: 'refused topics (forbidden_topic)' },
      },
    },
  },
};
const topicsAck = {
  oneOf: [
    { type: 'object', required: ['ok', 'topics'], additionalProperties: false, properties: { ok: { const: true }, topics: { type: 'array', items: { type: 'string' } } } },
    errorAck,
  ],
};

const okAck = {
  oneOf: [{ type: 'object', required: ['ok'], additionalProperties: false, properties: { ok: { const: true } } }, errorAck],
};

export const ASYNCAPI = {
  asyncapi: '2.6.0',
  info: {
    title: 'push-gateway device protocol',
    version: '1.0.0',
    description:
      'Socket.IO namespace "/", path "/socket.io". Connect with auth { token, network?, rtt? } (rtt: the round trip the client expects, ms, widens the first ttl). A refused handshake ends in connect_error "unauthorized" with data.code.',
  },
  defaultContentType: 'application/json',
  channels: {
    '/': {
      publish: {
        summary: 'Client to server events',
        message: { oneOf: CLIENT_EVENTS.map(ref) },
      },
      subscribe: {
        summary: 'Server to client events',
        message: { oneOf: Object.keys(SERVER_EVENTS).map(ref) },
      },
    },
    webhook: {
      description:
        'Events for backends, POSTed to each WEBHOOK_URL (content-type application/json, the envelope as body), signed as Standard Webhooks: ' +
        'webhook-id = the event id, webhook-timestamp (seconds, per attempt), webhook-signature v1,<base64 HMAC-SHA256> with WEBHOOK_SECRET. ' +
        'At least once: deduplicate by id; per device, order by data.seq. Any 2xx is success; other answers are retried with backoff; 410 stops the URL until the gateway is next started.',
      subscribe: {
        summary: 'Gateway to backend: one event per request',
        bindings: { http: { type: 'request', method: 'POST', bindingVersion: '0.1.0' } },
        message: { oneOf: EVENT_TYPES.map(ref) },
      },
    },
  },
  components: {
    messages: {
      ...Object.fromEntries(
        EVENT_TYPES.map((type) => [
          type,
          {
            name: type,
            summary: `Webhook body (and GET /v1/events item) of a ${type} event`,
            headers: {
              type: 'object',
              required: ['webhook-id', 'webhook-timestamp', 'webhook-signature'],
              properties: { 'webhook-id': { type: 'string' }, 'webhook-timestamp': { type: 'string' }, 'webhook-signature': { type: 'string' } },
            },
            payload: EVENT_ENVELOPE_SCHEMAS[type],
          },
        ]),
      ),
      heartbeat: {
        name: 'heartbeat',
        summary: 'Refreshes presence; the interval is clamped to [min, max]',
        payload: CLIENT_EVENT_SCHEMAS.heartbeat,
        'x-ack': {
          oneOf: [
            {
              type: 'object',
              required: ['ok', 'interval', 'ttl', 'serverTime'],
              additionalProperties: false,
              properties: { ok: { const: true }, interval: { type: 'integer' }, ttl: { type: 'integer' }, serverTime: ms },
            },
            errorAck,
          ],
        },
      },
      subscribe: { name: 'subscribe', summary: 'Join topics the token allows', payload: CLIENT_EVENT_SCHEMAS.subscribe, 'x-ack': topicsAck },
      auth: {
        name: 'auth',
        summary:
          'Replaces the session token before it runs out (same sub and deviceId). Its topics claim becomes the grant: joined topics it no longer allows are left',
        payload: CLIENT_EVENT_SCHEMAS.auth,
        'x-ack': {
          oneOf: [
            {
              type: 'object',
              required: ['ok', 'tokenExpiresAt', 'topics'],
              additionalProperties: false,
              properties: {
                ok: { const: true },
                tokenExpiresAt: { ...ms, description: 'when the new token runs out (epoch ms)' },
                topics: { type: 'array', items: { type: 'string' }, description: 'topics still held' },
              },
            },
            errorAck,
          ],
        },
      },
      unsubscribe: { name: 'unsubscribe', summary: 'Leave topics', payload: CLIENT_EVENT_SCHEMAS.unsubscribe, 'x-ack': topicsAck },
      register_push: {
        name: 'register_push',
        summary:
          'Registers where else the device can be reached when the socket cannot deliver (fallback of POST /v1/notifications): a Web Push subscription (https endpoint on a WEBPUSH_ENDPOINT_HOSTS host, P-256 p256dh and 16-byte auth), or an APNs / FCM token. One per device: a new one replaces it. Refused with invalid_push_target',
        payload: CLIENT_EVENT_SCHEMAS.register_push,
        'x-ack': okAck,
      },
      unregister_push: {
        name: 'unregister_push',
        summary: "Deletes the device's push registration",
        payload: CLIENT_EVENT_SCHEMAS.unregister_push,
        'x-ack': okAck,
      },
      ready: {
        name: 'ready',
        summary: 'Presence is recorded; the session can beat and receive',
        payload: {
          type: 'object',
          required: ['sessionId', 'deviceId', 'userId', 'heartbeat', 'serverTime', 'tokenExpiresAt'],
          additionalProperties: false,
          properties: {
            sessionId: { type: 'string' },
            deviceId: id,
            userId: id,
            serverTime: ms,
            tokenExpiresAt: {
              ...ms,
              description: 'when the token runs out (its exp, or iat + DEVICE_TOKEN_MAX_AGE if earlier); refresh with auth before, the session ends TOKEN_EXPIRY_GRACE_MS after',
            },
            heartbeat: {
              type: 'object',
              required: ['interval', 'min', 'max', 'ttl'],
              additionalProperties: false,
              properties: {
                interval: { type: 'integer' },
                min: { type: 'integer' },
                max: { type: 'integer' },
                ttl: { type: 'integer', description: 'how long presence lives without a heartbeat' },
                recommended: { type: 'integer', description: 'learned starting interval for auth.network' },
              },
            },
          },
        },
      },
      notification: {
        name: 'notification',
        summary: 'A push; call the ack to confirm receipt (unacked ones are sent again with the same id)',
        payload: {
          type: 'object',
          required: ['id', 'data', 'createdAt'],
          additionalProperties: false,
          properties: {
            id: { type: 'string' },
            data: { type: 'object', description: 'the data object as posted to POST /v1/notifications, deep-equal (every key kept)' },
            title: { type: 'string' },
            body: { type: 'string' },
            topic: { type: 'string' },
            collapseKey: { type: 'string' },
            createdAt: ms,
            expiresAt: ms,
          },
        },
        'x-ack': { description: 'any value; calling the ack is what counts' },
      },
      session_replaced: {
        name: 'session_replaced',
        summary: 'Another connection of this device took over; this socket is closed (do not reconnect)',
        payload: {
          type: 'object',
          required: ['sessionId', 'reason'],
          additionalProperties: false,
          properties: { sessionId: { type: 'string' }, reason: { const: 'new_session' } },
        },
      },
      session_ended: {
        name: 'session_ended',
        summary: 'The server ends this session; the transport closes within 1 s. Reconnect (with a fresh token for token_expired) when `reconnect` is true',
        payload: {
          type: 'object',
          required: ['reason', 'reconnect'],
          additionalProperties: false,
          properties: {
            reason: { enum: Object.keys(RECONNECT_AFTER) },
            reconnect: { type: 'boolean' },
          },
        },
      },
      server_draining: {
        name: 'server_draining',
        summary: 'The instance shuts down; the transport closes next: reconnect at once',
        payload: {
          type: 'object',
          required: ['instanceId', 'reconnect'],
          additionalProperties: false,
          properties: { instanceId: { type: 'string' }, reconnect: { const: true } },
        },
      },
    },
    schemas: {
      connectError: {
        type: 'object',
        description: 'data of connect_error when message is "unauthorized"',
        required: ['code', 'message'],
        additionalProperties: false,
        properties: { code: { enum: ['missing_token', 'invalid_token', 'token_expired'] }, message: { type: 'string' } },
      },
    },
  },
} as const;
