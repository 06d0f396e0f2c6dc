import Redis from 'ioredis';
import { Socket } from 'socket.io-client';
import * as webpush from 'web-push';
import { FALLBACK_LEASE_MS } from '../src/push/fallback.service';
import { api, connectDevice, nextEvent, startTestApp, TestApp, waitFor } from './support/app';
import { FakeClock } from './support/fake-clock';
import { getJson, RunningGateway, startGateway } from './support/gateways';
import { WebPushTestServer } from './support/push';
import { trustTestCa } from './support/trust-test-ca';
import { deleteKeys, testRedisUrl, uniquePrefix } from './support/redis';
import { deviceToken } from './support/tokens';

type Json = Record<string, any>;

/**
 * A 202 does not lose its fallback when the instance that answered it dies right after: the
 * offline targets' pushes are in the store's due-time index, leased to the publishing instance.
 * Here that instance is a real process, `kill -9`ed while its push is in flight; the other instance
 * (in process, its clock moved past the lease) takes the job over and records the outcome.
 */
describe('native push fallback survives the publishing instance (kill -9 of a gateway process)', () => {
  const prefix = uniquePrefix('fallback-crash');
  const redis = new Redis(testRedisUrl());
  const clock = new FakeClock(Date.now());
  const sockets: Socket[] = [];
  let service: WebPushTestServer;
  let doomed: RunningGateway;
  let survivor: TestApp;

  beforeAll(async () => {
    service = await WebPushTestServer.start();
    trustTestCa();
    const vapid = webpush.generateVAPIDKeys();
    const env = {
      REDIS_URL: testRedisUrl(),
      REDIS_PREFIX: prefix,
      WEBPUSH_VAPID_PUBLIC_KEY: vapid.publicKey,
      WEBPUSH_VAPID_PRIVATE_KEY: vapid.privateKey,
      WEBPUSH_SUBJECT: 'mailto:ops@example.com',
      WEBPUSH_ENDPOINT_HOSTS: '127.0.0.1',
    };
    doomed = await startGateway('fbc-doomed', { ...env, NODE_EXTRA_CA_CERTS: service.caFile });
    survivor = await startTestApp({ ...env, INSTANCE_ID: 'fbc-survivor', SWEEP_INTERVAL_MS: '100' }, clock);
  }, 30_000);
  afterAll(async () => {
    sockets.forEach((s) => s.disconnect());
    doomed?.process.child.kill('SIGKILL');
    await survivor?.close();
    await service?.close();
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  it('the surviving instance sends the push of a publish whose instance died with it in flight, and records it', async () => {
    const socket = connectDevice(survivor.url, deviceToken({ sub: 'fbc-user', deviceId: 'fbc-dev' }));
    sockets.push(socket);
    await nextEvent(socket, 'ready');
    const sub = service.subscribe();
    expect(await socket.timeout(5_000).emitWithAck('register_push', { provider: 'webpush', subscription: sub.json })).toEqual({ ok: true });
    socket.disconnect();
    await waitFor(async () => (await getJson<Json>(survivor.url, '/v1/devices/fbc-dev')).online === false);

    service.script.hold(); // the push service takes the request and does not answer yet
    const res = await api(doomed.url, '/v1/notifications', { method: 'POST', json: { deviceIds: ['fbc-dev'], data: { n: 1 }, ttl: 600, fallback: 'offline' } });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    await waitFor(() => service.inFlight === 1, 10_000); // arrived, held unanswered
    doomed.process.child.kill('SIGKILL');
    await doomed.process.exited;
    service.script.release();
    // Nothing recorded, and nobody else sends while the dead instance's lease runs.
    expect(((await getJson<Json>(survivor.url, `/v1/notifications/${id}`)).targets as Json[])[0]).not.toHaveProperty('fallback');
    await waitFor(() => service.receivedFor(sub.id).length === 1); // the dead instance's request, answered to nobody

    // The dead instance leased it on its own (real) clock: move the survivor's past that lease.
    clock.advance(Date.now() - clock.now() + FALLBACK_LEASE_MS + 1_000);
    await waitFor(() => service.receivedFor(sub.id).length === 2, 10_000);
    expect(service.receivedFor(sub.id)[1]).toMatchObject({ problems: [], status: 201, payload: { id, data: { n: 1 } } });
    await waitFor(async () => ((await getJson<Json>(survivor.url, `/v1/notifications/${id}`)).targets as Json[])[0]!.fallback !== undefined);
    expect(((await getJson<Json>(survivor.url, `/v1/notifications/${id}`)).targets as Json[])[0]).toMatchObject({
      deviceId: 'fbc-dev',
      status: 'pending',
      fallback: { provider: 'webpush', status: 'sent', at: clock.now() },
    });
  });
});
