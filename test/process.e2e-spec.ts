import { join } from 'node:path';
import { Socket } from 'socket.io-client';
import { api, connectDevice, nextEvent, waitFor } from './support/app';
import { freePort } from './support/find-redis';
import { GatewayProcess, spawnGateway } from './support/process';
import { deleteKeys, testRedis, testRedisUrl, uniquePrefix } from './support/redis';
import { deviceToken, TEST_API_KEY, TEST_JWT_SECRET } from './support/tokens';

describe('the gateway as a process (dist/main.js)', () => {
  const running: GatewayProcess[] = [];
  const sockets: Socket[] = [];
  afterEach(() => {
    sockets.splice(0).forEach((s) => s.disconnect());
    running.splice(0).forEach((p) => p.child.exitCode === null && p.child.kill('SIGKILL'));
  });

  it('starts on the embedded store with generated development secrets, printed once', async () => {
    const port = await freePort();
    const gw = spawnGateway({ PORT: String(port) });
    running.push(gw);
    const [, apiKey] = await gw.waitForOutput(/API_KEYS=(\S+)/);
    const [, token] = await gw.waitForOutput(/demo device token[^\n]*\n\s+(\S+)/);
    const url = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${url}/health/live`).catch(() => null))?.ok ?? false, 10_000);
    const ready = (await (await fetch(`${url}/health/ready`)).json()) as { checks: { store: { kind: string } } };
    expect(ready.checks.store.kind).toBe('memory');
    const socket = connectDevice(url, token);
    sockets.push(socket);
    await nextEvent(socket, 'ready');
    const presence = await api(url, '/v1/devices/demo-device', { key: apiKey });
    expect(await presence.json()).toMatchObject({ deviceId: 'demo-device', userId: 'demo-user', online: true });
    expect(gw.output().match(/API_KEYS=/g)).toHaveLength(1);
  });

  it('refuses to start in production without keys and secrets', async () => {
    const gw = spawnGateway({ NODE_ENV: 'production', PORT: String(await freePort()) });
    expect(await gw.exited).toBe(1);
    expect(gw.output()).toContain('API_KEYS is required when NODE_ENV=production');
    expect(gw.output()).toContain('DEVICE_JWT_SECRET or DEVICE_JWT_PUBLIC_KEY is required');
  });

  it('stops at start on a bad variable, naming it', async () => {
    const gw = spawnGateway({ HEARTBEAT_INTERVAL_MS: 'often', SWEEP_INTERVAL_MS: '-5' });
    expect(await gw.exited).toBe(1);
    expect(gw.output()).toContain('HEARTBEAT_INTERVAL_MS must be a whole number, got "often"');
    expect(gw.output()).toContain('SWEEP_INTERVAL_MS must be a whole number, got "-5"');
  });

  it('loads the OpenAPI library with the first request for the docs, not at start, and no upload handling at all', async () => {
    const port = await freePort();
    const gw = spawnGateway({ PORT: String(port), API_KEYS: TEST_API_KEY, DEVICE_JWT_SECRET: TEST_JWT_SECRET }, [
      '--require',
      join(__dirname, 'support', 'loaded-packages.cjs'),
    ]);
    running.push(gw);
    const url = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${url}/health/ready`).catch(() => null))?.ok ?? false, 10_000);
    let asked = 0;
    const loaded = async (): Promise<string[]> => {
      asked++;
      gw.child.kill('SIGUSR2');
      const lines = () => [...gw.output().matchAll(/^loaded-packages: (.*)$/gm)];
      await waitFor(() => lines().length >= asked, 5_000);
      return JSON.parse(lines()[asked - 1]?.[1] ?? 'null') as string[];
    };
    const atStart = await loaded();
    expect(atStart).toEqual(expect.arrayContaining(['@nestjs/core', 'socket.io', 'ioredis']));
    expect(atStart).not.toContain('@nestjs/swagger');
    expect(atStart).not.toContain('web-push');
    // The gateway takes no uploads: Express's adapter comes without the package's multer interceptors.
    expect(atStart).not.toContain('multer');
    expect(atStart).not.toContain('busboy');

    const doc = await fetch(`${url}/docs-json`);
    expect(doc.status).toBe(200);
    expect(Object.keys(((await doc.json()) as { paths: object }).paths)).toContain('/v1/notifications');
    expect(await loaded()).toContain('@nestjs/swagger');
    expect((await fetch(`${url}/docs`)).status).toBe(200);
  });

  it('loses nothing pending when killed with SIGKILL and restarted', async () => {
    const prefix = uniquePrefix('kill9');
    const redis = testRedis();
    const port = await freePort();
    const env = {
      PORT: String(port),
      REDIS_URL: testRedisUrl(),
      REDIS_PREFIX: prefix,
      API_KEYS: TEST_API_KEY,
      DEVICE_JWT_SECRET: TEST_JWT_SECRET,
      HEARTBEAT_INTERVAL_MS: '400',
      HEARTBEAT_MIN_MS: '200',
      SWEEP_INTERVAL_MS: '100',
    };
    const url = `http://127.0.0.1:${port}`;
    const up = () => waitFor(async () => (await fetch(`${url}/health/ready`).catch(() => null))?.ok ?? false, 10_000);
    const post = async (json: unknown) => (await (await api(url, '/v1/notifications', { method: 'POST', json })).json()) as { id: string };
    try {
      const first = spawnGateway(env);
      running.push(first);
      await up();
      // One device is offline (known), the other gets a notification but never acks it.
      const leaver = connectDevice(url, deviceToken({ sub: 'u', deviceId: 'k-offline' }));
      sockets.push(leaver);
      await nextEvent(leaver, 'ready');
      leaver.disconnect();
      const mute = connectDevice(url, deviceToken({ sub: 'u', deviceId: 'k-unacked' }));
      sockets.push(mute);
      await nextEvent(mute, 'ready');
      const unacked = nextEvent<{ id: string }>(mute, 'notification');
      const queued = await post({ deviceIds: ['k-offline'], data: { text: 'while you were away' }, ttl: 300 });
      const sent = await post({ deviceIds: ['k-unacked'], data: { text: 'never acked' }, ttl: 300 });
      expect((await unacked).id).toBe(sent.id);

      first.child.kill('SIGKILL');
      expect(await first.exited).toBeNull();
      mute.disconnect();

      const second = spawnGateway(env);
      running.push(second);
      await up();
      for (const [deviceId, expected] of [
        ['k-offline', queued.id],
        ['k-unacked', sent.id],
      ] as const) {
        const socket = connectDevice(url, deviceToken({ sub: 'u', deviceId }));
        sockets.push(socket);
        const got = await new Promise<{ id: string }>((resolve) => socket.once('notification', (n: { id: string }, ack: () => void) => (ack(), resolve(n))));
        expect(got.id).toBe(expected);
      }
      await waitFor(async () => {
        const body = (await (await api(url, `/v1/notifications/${sent.id}`)).json()) as { targets: { status: string }[] };
        return body.targets[0]?.status === 'delivered';
      });
    } finally {
      await deleteKeys(redis, prefix);
      await redis.quit();
    }
  });
});
