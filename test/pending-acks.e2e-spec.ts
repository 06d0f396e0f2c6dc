import { DeviceChannel, MAX_PENDING_ACKS } from '../src/channel/device-channel';
import { api, connectDevice, nextEvent, startTestApp, TestApp, waitFor } from './support/app';
import { deviceToken } from './support/tokens';

/**
 * A device that never acks: the gateway keeps each push's ack callback past the ack timeout (a late
 * ack still counts as delivered), but never more than MAX_PENDING_ACKS per socket, so such a client
 * cannot grow the process's memory with every push it ignores.
 */
describe('ack callbacks of a device that never acks', () => {
  let gw: TestApp;
  beforeAll(async () => {
    gw = await startTestApp({ ACK_TIMEOUT_MS: '100', SOCKET_EVENTS_PER_SECOND: '100000', API_RATE_LIMIT: '100000' });
  });
  afterAll(() => gw?.close());

  it(`keeps at most ${MAX_PENDING_ACKS} per socket, and a late ack within them still counts`, async () => {
    const socket = connectDevice(gw.url, deviceToken({ sub: 'acks-user', deviceId: 'never-acks' }));
    const received: { id: string; ack: () => void }[] = [];
    socket.on('notification', (n: { id: string }, ack: () => void) => received.push({ id: n.id, ack }));
    await nextEvent(socket, 'ready');
    const pushes = MAX_PENDING_ACKS + 200;
    for (let i = 0; i < pushes; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, pushes - i) }, (_, j) =>
          api(gw.url, '/v1/notifications', { method: 'POST', json: { deviceIds: ['never-acks'], data: { i: i + j }, ttl: 600 } }).then((r) => expect(r.status).toBe(202)),
        ),
      );
    }
    await waitFor(() => received.length === pushes, 20_000);
    const server = gw.app.get(DeviceChannel).localSocket('never-acks') as unknown as { acks: Map<number, unknown> };
    expect(server.acks.size).toBeLessThanOrEqual(MAX_PENDING_ACKS);
    expect(server.acks.size).toBeGreaterThan(0);
    // The newest push, long past its 100 ms timeout, acked late: still delivered.
    const last = received.at(-1)!;
    last.ack();
    await waitFor(async () => ((await (await api(gw.url, `/v1/notifications/${last.id}`)).json()) as any).targets?.[0]?.status === 'delivered', 5_000);
    socket.close();
  }, 60_000);
});
