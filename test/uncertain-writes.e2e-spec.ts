import { Socket } from 'socket.io-client';
import { NotificationStore } from '../src/notifications/notification.store';
import { api, connectDevice, nextEvent, startTestApp, TestApp, waitFor } from './support/app';
import { RedisServer } from './support/redis-servers';
import { deviceToken } from './support/tokens';

type Json = Record<string, any>;

/**
 * "A 202 is done", and what Redis holds reaches online devices, even when a publish's outcome was
 * unknown: Redis frozen (SIGSTOP) mid-publish, so the command times out (503) yet Redis runs it
 * once it is thawed.
 */
describe('a publish whose outcome is unknown (Redis frozen mid-publish)', () => {
  let redis: RedisServer;
  let gw: TestApp;
  let socket: Socket;
  const received: Json[] = [];

  const post = (json: Json, key: string) =>
    api(gw.url, '/v1/notifications', { method: 'POST', json, headers: { 'Idempotency-Key': key } });
  const statusOf = async (id: string) => ((await (await api(gw.url, `/v1/notifications/${id}`)).json()) as Json).targets?.[0]?.status;

  /**
   * POSTs and freezes Redis the moment the publish is sent (after the request's rate limit was
   * counted, itself a Redis call): the command is sent, no answer comes, so the gateway cannot know.
   */
  async function postWhileFrozen(json: Json, key: string): Promise<Response> {
    const store = gw.app.get(NotificationStore);
    const publish = store.publish.bind(store);
    const frozen = jest.spyOn(store, 'publish').mockImplementationOnce((request) => {
      redis.pause();
      return publish(request);
    });
    try {
      return await post(json, key);
    } finally {
      redis.resume();
      frozen.mockRestore();
    }
  }

  beforeAll(async () => {
    redis = await (await RedisServer.create()).start();
    gw = await startTestApp({ REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: '300', REDIS_PROBE_INTERVAL_MS: '5000' });
    socket = connectDevice(gw.url, deviceToken({ sub: 'u', deviceId: 'phone' }));
    socket.on('notification', (n: Json, ack: () => void) => {
      received.push(n);
      ack();
    });
    // No publish before the frozen one: the publish script runs on this fresh server for the first
    // time then, which works only because the gateway loaded its scripts when it connected.
    await nextEvent(socket, 'ready');
  });
  afterAll(async () => {
    socket.disconnect();
    await gw.close();
    redis.kill();
  });

  it('answers 503 fast, and what Redis stored anyway still reaches the online device (ttl 0)', async () => {
    const res = await postWhileFrozen({ deviceIds: ['phone'], data: { n: 'unknown-0' } }, 'unknown-0');
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    await waitFor(() => received.some((n) => n.data.n === 'unknown-0'), 5_000);
    const id = received.find((n) => n.data.n === 'unknown-0')!.id as string;
    await waitFor(async () => (await statusOf(id)) === 'delivered');
  });

  it('makes a replayed 202 mean "sent now": the retry of a 503 finds it stored and the device gets it (ttl > 0)', async () => {
    const body = { deviceIds: ['phone'], data: { n: 'unknown-60' }, ttl: 60 };
    expect((await postWhileFrozen(body, 'unknown-60')).status).toBe(503);
    const retry = await post(body, 'unknown-60');
    expect(retry.status).toBe(202);
    const answer = (await retry.json()) as Json;
    expect(answer).toMatchObject({ online: 1, queued: 0 });
    await waitFor(() => received.some((n) => n.id === answer.id), 5_000);
    await waitFor(async () => (await statusOf(answer.id)) === 'delivered');
  });
});
