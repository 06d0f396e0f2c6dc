import { io, Socket } from 'socket.io-client';
import { api, nextEvent, startTestApp, TestApp, waitFor } from './support/app';
import { metricValue, pollingHandshake, rawConnection, RawConnection, rawRequest, websocketHandshake, within } from './support/raw-http';
import { deviceToken, TEST_API_KEY } from './support/tokens';

const ALLOWED = 'https://app.example';
const OPS_TOKEN = 'ops-token-0123456789abcdef';

/** What the gateway shows the network: origins, headers, the ops token, connection caps, the demo. */
describe('HTTP exposure (real app on loopback, raw clients)', () => {
  const apps: TestApp[] = [];
  const start = async (env: Record<string, string>) => {
    const app = await startTestApp(env);
    apps.push(app);
    return app;
  };
  afterAll(async () => {
    for (const app of apps) await app.close();
  });

  describe('origins (CORS_ORIGINS) on both transports', () => {
    let gw: TestApp;
    const sockets: Socket[] = [];
    beforeAll(async () => {
      gw = await start({ CORS_ORIGINS: ALLOWED });
    });
    afterEach(() => sockets.splice(0).forEach((s) => s.disconnect()));

    it('refuses browser handshakes from other origins (null included), clearly and without credentials', async () => {
      for (const origin of ['https://evil.example', 'null']) {
        const polling = await pollingHandshake(gw.url, { origin });
        expect(polling.status).toBe(403);
        expect(JSON.parse(polling.body)).toEqual({ code: 4, message: 'origin not allowed' });
        // The page may read why it was refused, and nothing else: no origin reflected, no credentials.
        expect(polling.headers['access-control-allow-origin']).toBe('*');
        expect(polling.headers['access-control-allow-credentials']).toBeUndefined();
        // engine.io answers every refused upgrade with 400; the reason is the body.
        expect(await websocketHandshake(gw.url, { origin })).toEqual({ status: 400, body: 'origin not allowed' });
      }
      expect(await metricValue(gw.url, 'push_gateway_connections_total{result="refused",reason="origin"}')).toBe(4);
    });

    it('accepts the listed origin and clients without an Origin header, reflecting only an allowed origin', async () => {
      const allowed = await pollingHandshake(gw.url, { origin: ALLOWED });
      expect(allowed.status).toBe(200);
      expect(allowed.body).toMatch(/^0\{"sid"/);
      expect(allowed.headers['access-control-allow-origin']).toBe(ALLOWED);
      expect(allowed.headers['access-control-allow-credentials']).toBeUndefined();
      const native = await pollingHandshake(gw.url);
      expect(native.status).toBe(200);
      expect(native.headers['access-control-allow-origin']).toBeUndefined();
      expect((await websocketHandshake(gw.url, { origin: ALLOWED })).status).toBe(101);
      expect((await websocketHandshake(gw.url)).status).toBe(101);

      for (const transports of [['polling'], ['websocket']]) {
        const socket = io(gw.url, {
          auth: { token: deviceToken({ sub: 'u', deviceId: `origin-${transports[0]}` }) },
          extraHeaders: { origin: ALLOWED },
          transports,
          reconnection: false,
          forceNew: true,
        });
        sockets.push(socket);
        await nextEvent(socket, 'ready');
      }
    });

    it('follows it on REST: CORS headers for the listed origin only, never with credentials', async () => {
      const preflight = await rawRequest(
        gw.url,
        '/v1/notifications',
        { origin: ALLOWED, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type,idempotency-key' },
        'OPTIONS',
      );
      expect(preflight.status).toBe(204);
      expect(preflight.headers['access-control-allow-origin']).toBe(ALLOWED);
      expect(preflight.headers['access-control-allow-headers']).toBe('authorization,content-type,idempotency-key');
      expect(preflight.headers['access-control-allow-credentials']).toBeUndefined();
      const read = await rawRequest(gw.url, '/v1/presence', { origin: ALLOWED, authorization: `Bearer ${TEST_API_KEY}` });
      expect(read.headers['access-control-allow-origin']).toBe(ALLOWED);
      expect(read.headers['access-control-expose-headers']).toBe('Retry-After');
      const evil = await rawRequest(gw.url, '/v1/presence', { origin: 'https://evil.example', authorization: `Bearer ${TEST_API_KEY}` });
      expect(evil.status).toBe(200); // the key decides; the browser just may not read it
      expect(evil.headers['access-control-allow-origin']).toBeUndefined();
    });

    it('allows null only when listed, and anything with * (the development default), still without credentials', async () => {
      const nullListed = await start({ CORS_ORIGINS: `null, ${ALLOWED}` });
      expect((await pollingHandshake(nullListed.url, { origin: 'null' })).headers['access-control-allow-origin']).toBe('null');
      expect((await pollingHandshake(nullListed.url, { origin: 'https://evil.example' })).status).toBe(403);

      const dev = await start({});
      expect(dev.config.http.corsOrigins).toBe('*');
      for (const origin of ['https://evil.example', 'null']) {
        const polling = await pollingHandshake(dev.url, { origin });
        expect(polling.status).toBe(200);
        expect(polling.headers['access-control-allow-origin']).toBe('*');
        expect(polling.headers['access-control-allow-credentials']).toBeUndefined();
        expect((await websocketHandshake(dev.url, { origin })).status).toBe(101);
      }
      // Not /demo: another site in the developer's browser must not read /demo/session.
      const session = await rawRequest(dev.url, '/demo/session', { origin: 'https://evil.example' });
      expect(session.status).toBe(200);
      expect(session.headers['access-control-allow-origin']).toBeUndefined();
    });

    it('refuses every browser origin in production unless configured', async () => {
      const prod = await start({ NODE_ENV: 'production' });
      expect((await pollingHandshake(prod.url, { origin: ALLOWED })).status).toBe(403);
      expect((await websocketHandshake(prod.url, { origin: ALLOWED })).status).toBe(400);
      expect((await pollingHandshake(prod.url)).status).toBe(200);
    });
  });

  describe('headers', () => {
    it('sends security headers and never names the framework', async () => {
      const prod = await start({ NODE_ENV: 'production' });
      for (const [path, status] of [
        ['/health/live', 200],
        ['/nope', 404],
        ['/v1/presence', 401],
      ] as const) {
        const res = await rawRequest(prod.url, path);
        expect(res.status).toBe(status);
        expect(res.headers['x-powered-by']).toBeUndefined();
        expect(res.headers['x-content-type-options']).toBe('nosniff');
        expect(res.headers['content-security-policy']).toContain("script-src 'self'");
        expect(res.headers['content-security-policy']).not.toContain('upgrade-insecure-requests');
      }
    });
  });

  describe('OPS_TOKEN', () => {
    const guarded = ['/metrics', '/METRICS', '/metrics/', '/docs', '/docs/', '/docs/swagger-ui-init.js', '/docs-json', '/docs-yaml', '/asyncapi.json'];

    it('guards metrics and the API descriptions with a bearer token, in the error shape', async () => {
      const gw = await start({ OPS_TOKEN });
      for (const path of guarded) {
        for (const headers of [{}, { authorization: 'Bearer wrong-token-0123456789abcdef' }, { authorization: TEST_API_KEY }] as Record<string, string>[]) {
          const res = await rawRequest(gw.url, path, headers);
          expect({ path, status: res.status }).toEqual({ path, status: 401 });
          expect(JSON.parse(res.body)).toEqual({ statusCode: 401, error: 'Unauthorized', message: 'Authorization: Bearer <OPS_TOKEN> is required' });
        }
      }
      const auth = { authorization: `Bearer ${OPS_TOKEN}` };
      expect((await rawRequest(gw.url, '/metrics', auth)).body).toContain('push_gateway_connected_devices');
      expect((await rawRequest(gw.url, '/docs', auth)).body).toContain('swagger-ui');
      expect((await rawRequest(gw.url, '/docs/swagger-ui-init.js', auth)).status).toBe(200);
      expect(JSON.parse((await rawRequest(gw.url, '/docs-json', auth)).body)).toMatchObject({ openapi: expect.any(String) });
      expect(JSON.parse((await rawRequest(gw.url, '/asyncapi.json', auth)).body)).toMatchObject({ asyncapi: expect.any(String) });
      // Health stays open for probes; REST keeps its own keys.
      expect((await rawRequest(gw.url, '/health/live')).status).toBe(200);
      expect((await api(gw.url, '/v1/presence')).status).toBe(200);
    });

    it('leaves them open without OPS_TOKEN, as before', async () => {
      const gw = await start({});
      for (const path of ['/metrics', '/docs', '/docs-json', '/asyncapi.json']) expect((await rawRequest(gw.url, path)).status).toBe(200);
    });
  });

  describe('connection caps', () => {
    it('closes connections over MAX_CONNECTIONS as they arrive, and counts them', async () => {
      const gw = await start({ MAX_CONNECTIONS: '3' });
      const held: RawConnection[] = [];
      try {
        for (let i = 0; i < 3; i++) held.push(await rawConnection(gw.url));
        const over = await rawConnection(gw.url);
        await within(over.closed, 2_000, 'the fourth connection closed');
        expect(over.received()).toBe('');
        held.shift()?.socket.destroy();
        // Once the server has seen that close, a slot is free again.
        let dropped = 0;
        await waitFor(async () => {
          dropped = await metricValue(gw.url, 'push_gateway_http_connections_dropped_total').catch(() => 0);
          return dropped > 0;
        });
        expect(dropped).toBeGreaterThanOrEqual(1);
      } finally {
        held.forEach((c) => c.socket.destroy());
      }
    });

    it('limits handshakes per client address, taken from X-Forwarded-For only with TRUST_PROXY', async () => {
      const proxied = await start({ HANDSHAKES_PER_ADDRESS_PER_SECOND: '1', TRUST_PROXY: '1' });
      const from = (address: string) => ({ 'x-forwarded-for': `6.6.6.6, ${address}` }); // the client's own entry is not trusted
      expect((await pollingHandshake(proxied.url, from('198.51.100.7'))).status).toBe(200);
      expect((await pollingHandshake(proxied.url, from('198.51.100.7'))).status).toBe(200); // burst of twice the rate
      const refused = await pollingHandshake(proxied.url, from('198.51.100.7'));
      expect(refused.status).toBe(403);
      expect(JSON.parse(refused.body)).toMatchObject({ message: 'too many handshakes from this address' });
      expect(await websocketHandshake(proxied.url, from('198.51.100.7'))).toEqual({ status: 400, body: 'too many handshakes from this address' });
      expect((await pollingHandshake(proxied.url, from('198.51.100.8'))).status).toBe(200);
      expect(await metricValue(proxied.url, 'push_gateway_connections_total{result="refused",reason="handshake_rate"}')).toBe(2);

      const direct = await start({ HANDSHAKES_PER_ADDRESS_PER_SECOND: '1' });
      const statuses = [];
      for (const address of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) statuses.push((await pollingHandshake(direct.url, from(address))).status);
      expect(statuses).toEqual([200, 200, 403]); // all from 127.0.0.1: X-Forwarded-For is not believed
    });
  });

  describe('the demo with real keys', () => {
    const real = { NODE_ENV: '', HOST: '0.0.0.0' }; // startTestApp sets real API_KEYS and DEVICE_JWT_SECRET

    it('is off by default on a public bind, also with NODE_ENV unset or staging', async () => {
      for (const env of [real, { ...real, NODE_ENV: 'staging' }]) {
        const gw = await start(env);
        expect((await rawRequest(gw.url, '/demo/session')).status).toBe(404);
        expect((await rawRequest(gw.url, '/demo')).status).toBe(404);
      }
    });

    it('keeps the API key to itself when asked to run, unless DEMO_SHARE_API_KEY=true', async () => {
      const on = await start({ ...real, DEMO_ENABLED: 'true' });
      const session = JSON.parse((await rawRequest(on.url, '/demo/session')).body) as { token?: string; apiKey?: string };
      expect(session.token).toEqual(expect.any(String));
      expect(session.apiKey).toBeUndefined();
      const sharing = await start({ ...real, DEMO_ENABLED: 'true', DEMO_SHARE_API_KEY: 'true' });
      expect(JSON.parse((await rawRequest(sharing.url, '/demo/session')).body)).toMatchObject({ apiKey: TEST_API_KEY });
    });
  });
});
