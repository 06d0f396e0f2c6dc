import Redis from 'ioredis';
import type { Browser } from 'playwright-core';
import { api, connectDevice, nextEvent, startTestApp, TestApp, waitFor } from './support/app';
import { launchChromium, watchErrors } from './support/chromium';
import { deleteKeys, testRedisUrl, uniquePrefix } from './support/redis';
import { deviceToken, TEST_API_KEY } from './support/tokens';

const OPS_TOKEN = 'ops-token-openapi-0123456789';

interface Parameter {
  name: string;
  in: string;
  required?: boolean;
}
interface Media {
  example?: unknown;
  examples?: Record<string, { value: unknown }>;
}
interface Operation {
  parameters?: Parameter[];
  requestBody?: { content: Record<string, Media> };
  responses: Record<string, { content?: Record<string, Media> }>;
  security?: Record<string, string[]>[];
}
interface OpenApi {
  paths: Record<string, Record<string, Operation>>;
  components: { securitySchemes?: Record<string, Record<string, unknown>> };
  security?: unknown;
}

/** Every operation of the document with its method and path. */
function operations(doc: OpenApi): { method: string; path: string; op: Operation }[] {
  return Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ method, path, op })));
}

/** The example values a media type carries, whichever way it carries them. */
function examplesOf(media: Media): unknown[] {
  return [...(media.example === undefined ? [] : [media.example]), ...Object.values(media.examples ?? {}).map((e) => e.value)];
}

/**
 * The OpenAPI description as a generated client or Swagger UI consumes it: one optional
 * Idempotency-Key header, an API-key bearer scheme (not a JWT), examples that work. Then Swagger
 * UI itself, in headless Chromium, sends a notification with "Try it out" and a real device gets it.
 */
describe('OpenAPI description', () => {
  const prefix = uniquePrefix('openapi');
  let redis: Redis;
  let gw: TestApp;
  let doc: OpenApi;

  beforeAll(async () => {
    redis = new Redis(testRedisUrl());
    gw = await startTestApp({ REDIS_URL: testRedisUrl(), REDIS_PREFIX: prefix, OPS_TOKEN });
    const res = await fetch(`${gw.url}/docs-json`, { headers: { authorization: `Bearer ${OPS_TOKEN}` } });
    expect(res.status).toBe(200);
    doc = (await res.json()) as OpenApi;
  });
  afterAll(async () => {
    await gw?.close();
    await deleteKeys(redis, prefix);
    redis.disconnect();
  });

  it('lists exactly one, optional, Idempotency-Key header on POST /v1/notifications and no required header anywhere', () => {
    const headers = doc.paths['/v1/notifications']!.post!.parameters!.filter((p) => p.in === 'header');
    expect(headers).toEqual([expect.objectContaining({ name: 'Idempotency-Key', in: 'header', required: false })]);
    for (const { method, path, op } of operations(doc)) {
      const params = op.parameters ?? [];
      const keys = params.map((p) => `${p.in}:${p.name.toLowerCase()}`);
      expect({ op: `${method} ${path}`, duplicates: keys.filter((k, i) => keys.indexOf(k) !== i) }).toEqual({ op: `${method} ${path}`, duplicates: [] });
      expect({ op: `${method} ${path}`, required: params.filter((p) => p.in === 'header' && p.required).map((p) => p.name) }).toEqual({
        op: `${method} ${path}`,
        required: [],
      });
    }
  });

  it('declares the API key as an opaque bearer token on every /v1 route, and nothing else', () => {
    expect(doc.components.securitySchemes).toEqual({
      apiKey: { type: 'http', scheme: 'bearer', description: expect.stringContaining('API_KEYS') },
    });
    expect(JSON.stringify(doc)).not.toMatch(/bearerFormat|JWT/);
    expect(doc.security).toBeUndefined();
    for (const { method, path, op } of operations(doc)) {
      expect({ op: `${method} ${path}`, security: op.security }).toEqual({
        op: `${method} ${path}`,
        security: path.startsWith('/v1/') ? [{ apiKey: [] }] : undefined,
      });
    }
  });

  it('serves the YAML document too, and answers a docs path it has nothing for as the API answers any unknown path', async () => {
    const auth = { authorization: `Bearer ${OPS_TOKEN}` };
    const yaml = await fetch(`${gw.url}/docs-yaml`, { headers: auth });
    expect(yaml.status).toBe(200);
    expect(await yaml.text()).toMatch(/^openapi: 3/);
    // Swagger's own application does not answer it: the request goes back down the main chain,
    // whose not-found answer is JSON (Express's response methods, not the docs application's).
    const missing = await fetch(`${gw.url}/docs/no-such-asset.js`, { headers: auth });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ statusCode: 404, error: 'Not Found' });
    expect(missing.headers.get('x-powered-by')).toBeNull();
    // Without the token the docs paths stay closed, loaded or not.
    expect((await fetch(`${gw.url}/docs-yaml`)).status).toBe(401);
  });

  it('has an example on every request body, and each one is accepted as it stands', async () => {
    const bodies = operations(doc).filter(({ op }) => op.requestBody);
    expect(bodies.map(({ method, path }) => `${method} ${path}`)).toEqual(['post /v1/notifications']);
    for (const { method, path, op } of bodies) {
      for (const [type, media] of Object.entries(op.requestBody!.content)) {
        const examples = examplesOf(media);
        expect({ op: `${method} ${path}`, type, examples: examples.length > 0 }).toEqual({ op: `${method} ${path}`, type, examples: true });
        for (const example of examples) {
          const res = await api(gw.url, path, { method: method.toUpperCase(), json: example });
          expect({ example, status: res.status }).toEqual({ example, status: 202 });
        }
      }
    }
  });

  it('shows an example answer, of the error shape, for every error status of /v1', () => {
    for (const { method, path, op } of operations(doc).filter((o) => o.path.startsWith('/v1/'))) {
      for (const [status, response] of Object.entries(op.responses).filter(([s]) => Number(s) >= 400)) {
        const example = examplesOf(response.content?.['application/json'] ?? {})[0];
        expect({ at: `${method} ${path} ${status}`, example }).toEqual({
          at: `${method} ${path} ${status}`,
          example: expect.objectContaining({ statusCode: Number(status), error: expect.any(String), message: expect.any(String) }),
        });
      }
    }
  });

  it('reads the header it documents: a replay with the same Idempotency-Key, a refused key naming the header', async () => {
    const body = { deviceIds: ['idem-device'], data: { n: 1 }, ttl: 60 };
    const first = await api(gw.url, '/v1/notifications', { method: 'POST', json: body, headers: { 'Idempotency-Key': 'openapi-replay-1' } });
    const again = await api(gw.url, '/v1/notifications', { method: 'POST', json: body, headers: { 'idempotency-key': 'openapi-replay-1' } });
    expect(first.status).toBe(202);
    expect(await again.json()).toEqual(await first.json());
    const bad = await api(gw.url, '/v1/notifications', { method: 'POST', json: body, headers: { 'Idempotency-Key': 'has a space' } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { fields: { field: string }[] }).fields).toEqual([expect.objectContaining({ field: 'Idempotency-Key' })]);
  });

  describe('in Swagger UI (headless Chromium)', () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await launchChromium();
    }, 30_000);
    afterAll(async () => {
      await browser?.close();
    });

    it('authorizes with the API key, tries POST /v1/notifications with the example body, gets 202, and the device receives it', async () => {
      // The example body targets phone-1: be that device (acking all it gets, the example test's queued one too).
      const device = connectDevice(gw.url, deviceToken({ sub: 'user-42', deviceId: 'phone-1' }));
      const received: { id: string; title?: string; data: unknown }[] = [];
      device.on('notification', (n: { id: string; data: unknown }, ack: () => void) => {
        received.push(n);
        ack();
      });
      await nextEvent(device, 'ready');

      const page = await browser.newPage();
      const errors: string[] = [];
      watchErrors(page, errors);
      // OPS_TOKEN guards the page, its assets and /docs-json; only those requests carry it (as an
      // operator's header extension scoped to /docs would), so the /v1 call carries the API key alone.
      const v1Requests: { authorization?: string; idempotencyKey?: string }[] = [];
      await page.route(/\/docs(-json|\/.*)?$|\/docs\//, (route) => route.continue({ headers: { ...route.request().headers(), authorization: `Bearer ${OPS_TOKEN}` } }));
      page.on('request', (req) => {
        const headers = req.headers();
        if (req.url().includes('/v1/')) v1Requests.push({ authorization: headers.authorization, idempotencyKey: headers['idempotency-key'] });
      });

      await page.goto(`${gw.url}/docs`);
      await page.locator('.swagger-ui .info .title', { hasText: 'push-gateway' }).waitFor({ timeout: 10_000 });

      await page.click('.auth-wrapper button.authorize');
      await page.fill('input[aria-label="auth-bearer-value"]', TEST_API_KEY);
      await page.click('.modal-ux button.modal-btn.authorize');
      await page.click('.modal-ux button.btn-done');

      const op = page.locator('#operations-notifications-NotificationsController_create');
      await op.locator('.opblock-summary').click();
      await op.locator('button.try-out__btn').click();
      const body = await op.locator('textarea.body-param__text').inputValue();
      expect(JSON.parse(body)).toEqual(expect.objectContaining({ deviceIds: ['phone-1'], data: { orderId: 17 } }));
      await op.locator('button.execute').click();

      const status = op.locator('.live-responses-table .response .response-col_status').first();
      await status.waitFor({ timeout: 10_000 });
      expect((await status.textContent())?.trim()).toBe('202');
      const answer = JSON.parse((await op.locator('.live-responses-table .response-col_description pre').first().textContent()) ?? '') as { id: string; online: number };
      expect(answer.online).toBe(1);
      await waitFor(() => received.some((n) => n.id === answer.id));
      expect(received.find((n) => n.id === answer.id)).toEqual(expect.objectContaining({ title: 'Order shipped', data: { orderId: 17 } }));
      // Acked: the receipt says delivered (and no ack timer outlives the app).
      await waitFor(async () => {
        const res = await api(gw.url, `/v1/notifications/${answer.id}`);
        return ((await res.json()) as { targets: { status: string }[] }).targets[0]?.status === 'delivered';
      });
      // No Idempotency-Key prefilled: a second "Try it out" must send again, not replay the first.
      expect(v1Requests).toEqual([{ authorization: `Bearer ${TEST_API_KEY}`, idempotencyKey: undefined }]);
      expect(errors).toEqual([]);

      await page.screenshot({ path: '/tmp/push-gateway-swagger-try-it-out.png', fullPage: false });
      await page.close();
      device.disconnect();
    }, 60_000);
  });
});
