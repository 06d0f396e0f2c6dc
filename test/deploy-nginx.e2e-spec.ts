import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { api, connectDevice, metric, nextEvent, waitFor } from './support/app';
import { freePort } from './support/find-redis';
import { RunningGateway, startGateway } from './support/gateways';
import { FreezableProxy } from './support/redis-servers';
import { testRedisUrl, uniquePrefix } from './support/redis';
import { deviceToken } from './support/tokens';

/**
 * deploy/nginx.conf in front of two built gateway processes (`npm run build` first), run by Debian's
 * nginx (.ci/run installs it). The file is used as shipped except for what only compose provides:
 * the upstream servers (the "gateway" replicas become two loopback ports), the listen address, and
 * writable log, pid and temp paths.
 */
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => spawnSync(p, ['-v']).status === 0);
if (!NGINX) console.warn('deploy-nginx: skipped: no nginx binary (apt-get install nginx)');
const describeNginx = NGINX ? describe : describe.skip;

function nginxConfigFor(replicas: string[], port: number, opsPort: number, dir: string): string {
  let conf = readFileSync(join(__dirname, '..', 'deploy', 'nginx.conf'), 'utf8');
  const replace = (from: string, to: string) => {
    if (!conf.includes(from)) throw new Error(`deploy/nginx.conf no longer contains "${from}": update this test`);
    conf = conf.replace(from, to);
  };
  replace('server gateway:3000 max_fails=1 fail_timeout=10s;', replicas.map((r) => `server ${r} max_fails=1 fail_timeout=10s;`).join('\n    '));
  replace('listen 80;', `listen 127.0.0.1:${port};`);
  replace('listen 81;', `listen 127.0.0.1:${opsPort};`);
  replace('access_log /var/log/nginx/access.log upstreams;', [
    `access_log ${dir}/access.log upstreams;`,
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${dir}/${t};`),
  ].join('\n  '));
  return conf;
}

describeNginx('deploy/nginx.conf in front of two gateway processes', () => {
  const prefix = uniquePrefix('nginx');
  const redisPort = Number(new URL(testRedisUrl()).port || 6379);
  const dir = mkdtempSync(join(tmpdir(), 'push-nginx-'));
  const links: FreezableProxy[] = [];
  const gateways: RunningGateway[] = [];
  let nginx: ChildProcess;
  let lb = '';
  let ops = '';

  const accessLog = () => readFileSync(join(dir, 'access.log'), 'utf8');
  const errorLog = () => readFileSync(join(dir, 'error.log'), 'utf8');
  const hostPort = (g: RunningGateway) => new URL(g.url).host;
  const logLines = (request: string) => accessLog().split('\n').filter((l) => l.includes(`"${request} HTTP/1.1"`));
  /** Sends a request through nginx and returns it with its access-log line (written when it ends). */
  async function viaLb(request: string, send: () => Promise<Response>): Promise<[Response, string]> {
    const seen = logLines(request).length;
    const res = await send();
    await waitFor(() => logLines(request).length > seen);
    return [res, logLines(request)[seen]!];
  }

  beforeAll(async () => {
    chmodSync(dir, 0o777); // nginx's workers run as nobody when the tests run as root
    // Each replica reaches Redis through a link of its own, so one can lose Redis alone.
    links.push(...(await Promise.all([0, 1].map(() => new FreezableProxy(redisPort).start()))));
    gateways.push(...(await Promise.all(links.map((link, i) => startGateway(`nginx-gw-${i}`, {
      REDIS_URL: `redis://127.0.0.1:${link.port}`,
      REDIS_PREFIX: prefix,
      TRUST_PROXY: '1',
      // Readiness must not flap on the healthy replica: with the test default (a sweep every
      // 100 ms, a pub/sub probe every 200 ms) one slow moment on a busy CI machine made it 503 and
      // nginx took both replicas out. The sick one is found by its store check, not by these.
      SWEEP_INTERVAL_MS: '1000',
      REDIS_PROBE_INTERVAL_MS: '1000',
    })))));
    const port = await freePort();
    const opsPort = await freePort();
    lb = `http://127.0.0.1:${port}`;
    ops = `http://127.0.0.1:${opsPort}`;
    const conf = join(dir, 'nginx.conf');
    writeFileSync(conf, nginxConfigFor(gateways.map(hostPort), port, opsPort, dir));
    const args = ['-p', dir, '-c', conf, '-e', join(dir, 'error.log'), '-g', `daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;`];
    const check = spawnSync(NGINX!, ['-t', ...args], { encoding: 'utf8' });
    if (check.status !== 0) throw new Error(`nginx -t refused deploy/nginx.conf:\n${check.stderr}`);
    nginx = spawn(NGINX!, args, { stdio: 'ignore' });
    await waitFor(async () => (await fetch(`${lb}/health/live`).catch(() => null))?.ok ?? false, 10_000);
  });

  afterAll(async () => {
    nginx?.kill('SIGTERM');
    for (const g of gateways) g.process.child.kill('SIGKILL');
    await Promise.all(links.map((l) => l.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('routes the public surface: /v1, /health, /demo and the device socket over WebSocket and polling', async () => {
    expect((await api(lb, '/v1/presence')).status).toBe(200);
    expect((await fetch(`${lb}/health/ready`)).status).toBe(200);
    expect((await fetch(`${lb}/health/live`)).status).toBe(200);
    // The gateways run with real keys on loopback, so the demo is on (README: DEMO_ENABLED).
    expect((await fetch(`${lb}/demo`)).status).toBe(200);
    expect((await fetch(`${lb}/demo/demo.js`)).status).toBe(200);
    for (const transports of [['websocket'], ['polling']]) {
      const socket = connectDevice(lb, deviceToken({ sub: 'u-nginx', deviceId: `d-${transports[0]}` }), { transports });
      try {
        await expect(nextEvent(socket, 'ready')).resolves.toMatchObject({ deviceId: `d-${transports[0]}` });
      } finally {
        socket.close();
      }
    }
  });

  it('does not route /metrics, /docs, /docs-json, /asyncapi.json or unknown paths', async () => {
    for (const path of ['/metrics', '/docs', '/docs/', '/docs-json', '/docs-yaml', '/asyncapi.json', '/console', '/']) {
      const res = await fetch(`${lb}${path}`);
      expect([path, res.status]).toEqual([path, 404]);
      expect(await res.json()).toMatchObject({ message: 'not routed by the load balancer' });
    }
    // The replicas do serve them (no OPS_TOKEN here): the 404 is the balancer's.
    expect((await fetch(`${gateways[0]!.url}/metrics`)).status).toBe(200);
  });

  it('routes everything on the operators\' listener: the console, /docs and /metrics (each guarded by the gateway)', async () => {
    for (const path of ['/console', '/docs', '/metrics']) expect([path, (await fetch(`${ops}${path}`)).status]).toEqual([path, 200]);
    expect((await fetch(`${ops}/v1/ops/stats`)).status).toBe(401); // the console's data needs a key
    expect((await api(ops, '/v1/ops/stats')).status).toBe(200);
  });

  it('never sends a failed POST to a second replica, and takes a replica whose readiness fails out', async () => {
    const [, probe] = await viaLb('GET /health/live', () => fetch(`${lb}/health/live`));
    const servedBy = /upstream=\[([^\]]+)\]/.exec(probe)![1];
    const x = gateways.findIndex((g) => hostPort(g) === servedBy);
    expect(x).toBeGreaterThanOrEqual(0);
    const [sick, healthy] = [gateways[x]!, gateways[1 - x]!];

    await links[x]!.stop(); // this replica's Redis is gone: its /health/ready turns 503
    await waitFor(async () => (await fetch(`${sick.url}/health/ready`)).status === 503, 10_000);

    const body = { deviceIds: ['nginx-nobody'], title: 'once', data: {} };
    const accepted = 'push_gateway_notifications_total{result="accepted"}';
    const before = await metric(healthy.url, accepted);
    const post = () => api(lb, '/v1/notifications', { method: 'POST', json: body });
    const [failed, line] = await viaLb('POST /v1/notifications', post);
    expect(failed.status).toBe(503);
    expect(line).toContain(`upstream=[${hostPort(sick)}]`); // one replica tried, not "a, b"
    expect(line).toContain('upstream_status=[503]');
    expect(await metric(healthy.url, accepted)).toBe(before);

    // The readiness probe that ran with that POST marked the replica failed...
    await waitFor(() => errorLog().includes('upstream server temporarily disabled'), 5_000).catch(() => {
      throw new Error(`nginx did not mark ${hostPort(sick)} failed:\n${errorLog()}\n${accessLog()}`);
    });
    // ...so the caller's retry lands on the ready replica.
    const [retried, retriedLine] = await viaLb('POST /v1/notifications', post);
    expect(retried.status).toBe(202);
    expect(retriedLine).toContain(`upstream=[${hostPort(healthy)}]`);
    expect(await metric(healthy.url, accepted)).toBe(before + 1);
  });
});
