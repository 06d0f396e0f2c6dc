import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './support/find-redis';
import { outsideDir, REPO, run, Running, start } from './support/outside-app';
import { GatewayProcess, spawnGateway } from './support/process';

/** The fenced block of README.md that starts with `firstLine`, as a reader would copy it. */
function readmeBlock(firstLine: string): string {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const block = [...readme.matchAll(/```\w*\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.startsWith(firstLine));
  if (!block) throw new Error(`README.md has no fenced block starting with ${firstLine}`);
  return block;
}

/**
 * The README's "Try it" snippets, pasted into an empty folder outside the repository that has only
 * the packages they name (from the npm registry), against the gateway as `npm start` runs it, with
 * the credentials its start block printed. Only the gateway's address differs from the README
 * (a free port instead of 3000): device.mjs takes it as an argument, the curl block as `GW`.
 */
describe("the README's Try it snippets, in an empty folder", () => {
  let gw: GatewayProcess;
  let folder: { dir: string; remove(): void };
  const devices: Running[] = [];
  let url: string;
  let printed: { apiKey: string; secret: string; token: string };

  beforeAll(async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    gw = spawnGateway({ PORT: String(port) });
    folder = outsideDir('push-readme');
    writeFileSync(join(folder.dir, 'package.json'), JSON.stringify({ name: 'try-it', private: true }));
    const installed = run('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', 'socket.io-client', 'jsonwebtoken'], { cwd: folder.dir, timeoutMs: 180_000 });
    const [, apiKey] = await gw.waitForOutput(/API_KEYS=(\S+)/, 20_000);
    const [, secret] = await gw.waitForOutput(/DEVICE_JWT_SECRET=(\S+)/);
    const [, token] = await gw.waitForOutput(/demo device token[^\n]*\n\s+(\S+)/);
    printed = { apiKey: apiKey!, secret: secret!, token: token! };
    await installed;
    for (const file of ['device.mjs', 'token.mjs']) writeFileSync(join(folder.dir, file), readmeBlock(`// ${file}:`));
    writeFileSync(join(folder.dir, 'backend.sh'), readmeBlock('KEY='));
  }, 240_000);
  afterEach(() => devices.splice(0).forEach((d) => d.child.kill()));
  afterAll(() => {
    if (gw?.child.exitCode === null) gw.child.kill('SIGKILL');
    folder?.remove();
  });

  const device = (token: string) => {
    const d = start(process.execPath, ['device.mjs', token, url], { cwd: folder.dir });
    devices.push(d);
    return d;
  };

  it('device.mjs connects with the printed token, and the curl block reaches it', async () => {
    const d = device(printed.token);
    await d.waitForLine(/^ready \{[\s\S]*deviceId: 'demo-device'/m);
    const { stdout } = await run('bash', ['backend.sh'], { cwd: folder.dir, env: { ...process.env, KEY: printed.apiKey, GW: url } });
    const [send, deviceRecord, presence] = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(send).toMatchObject({ online: 1, queued: 0 });
    expect(deviceRecord).toMatchObject({ deviceId: 'demo-device', online: true });
    expect(presence).toMatchObject({ online: 1 });
    await d.waitForLine(new RegExp(`^notification \\{[\\s\\S]*id: '${String(send!.id)}'[\\s\\S]*orderId: 17`, 'm'));
    expect(d.stderr()).toBe('');
  });

  it('token.mjs mints a token with the printed secret that device.mjs connects with', async () => {
    const { stdout } = await run(process.execPath, ['token.mjs'], { cwd: folder.dir, env: { ...process.env, DEVICE_JWT_SECRET: printed.secret } });
    const d = device(stdout.trim());
    await d.waitForLine(/^ready \{[\s\S]*deviceId: 'phone-1'[\s\S]*userId: 'user-42'/m);
    expect(d.stderr()).toBe('');
  });

  it('the curl block refuses to run without KEY instead of sending an empty key', async () => {
    await expect(run('bash', ['backend.sh'], { cwd: folder.dir })).rejects.toThrow(/set KEY to the API key/);
  });
});
