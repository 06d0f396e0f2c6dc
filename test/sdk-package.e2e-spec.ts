import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Browser } from 'playwright-core';
import { api, startTestApp, TestApp, waitFor } from './support/app';
import { launchChromium } from './support/chromium';
import { outsideDir, REPO, run, start } from './support/outside-app';
import { REACT_NATIVE_STUBS } from './support/react-native-stubs';
import { deviceToken } from './support/tokens';

const CLIENT = join(REPO, 'client');
const TSC = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');

/** The fenced block of client/README.md whose first line starts with `firstLine`. */
function readmeBlock(firstLine: string): string {
  const readme = readFileSync(join(CLIENT, 'README.md'), 'utf8');
  const block = [...readme.matchAll(/```\w*\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.startsWith(firstLine));
  if (!block) throw new Error(`client/README.md has no fenced block starting with ${firstLine}`);
  return block;
}

const CONSUMER = (load: string) => `${load}
const [url, token] = process.argv.slice(2);
const client = createPushClient({ url, token, transports: ['websocket'] });
client.on('ready', (r) => console.log('ready ' + r.deviceId));
client.on('notification', (n, ctx) => { console.log('notification ' + n.id + ' ' + n.title); ctx.ack(); client.close(); });
client.on('error', (e) => console.log('error ' + e.code));
`;

/**
 * The SDK as someone outside this repository gets it: `npm pack` in client/, `npm install` of that
 * tarball into a fresh app in the system temp dir (socket.io-client from the npm registry), then
 * used from Node ESM, Node CJS, TypeScript (both module systems), a browser page and the README's
 * React Native example, each against a real gateway.
 */
describe('the packed SDK, installed into an app outside the repository', () => {
  let gw: TestApp;
  let app: { dir: string; remove(): void };
  let tarball: string;
  let browser: Browser | undefined;
  let pages: Server | undefined;

  beforeAll(async () => {
    gw = await startTestApp({ HEARTBEAT_INTERVAL_MS: '1000', HEARTBEAT_MIN_MS: '300' });
    app = outsideDir('push-sdk-app');
    await run('npm', ['pack', '--pack-destination', app.dir], { cwd: CLIENT, timeoutMs: 120_000 }); // prepack builds it
    tarball = join(app.dir, readdirSync(app.dir).find((f) => f.endsWith('.tgz'))!);
    writeFileSync(join(app.dir, 'package.json'), JSON.stringify({ name: 'sdk-consumer', private: true, type: 'module' }));
    await run('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', tarball], { cwd: app.dir, timeoutMs: 180_000 });
  }, 300_000);
  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => (pages ? pages.close(resolve) : resolve(undefined)));
    await gw?.close();
    app?.remove();
  });

  /** Sends one notification through REST; its id. */
  const notify = async (deviceId: string, title: string) => {
    const res = await api(gw.url, '/v1/notifications', { method: 'POST', json: { deviceIds: [deviceId], title, data: {} } });
    expect(res.status).toBe(202);
    return ((await res.json()) as { id: string }).id;
  };

  /** Runs a consumer script with a fresh device, sends it one notification, returns its output. */
  const receiveOne = async (file: string, deviceId: string) => {
    const consumer = start(process.execPath, [file, gw.url, deviceToken({ sub: 'pkg-user', deviceId })], { cwd: app.dir });
    try {
      await consumer.waitForLine(/^ready /m);
      const id = await notify(deviceId, 'packed');
      await consumer.waitForLine(/^notification /m);
      expect(await consumer.exited).toBe(0); // it closes after the notification, and nothing keeps it alive
      return { id, stdout: consumer.stdout(), stderr: consumer.stderr() };
    } finally {
      consumer.child.kill();
    }
  };

  it('packs the builds, both declaration sets, the browser bundle and the README; no sources, and every module has its type', async () => {
    const { stdout } = await run('tar', ['tzf', tarball], { cwd: app.dir });
    const files = stdout.split('\n').filter(Boolean);
    for (const f of ['README.md', 'package.json', 'dist/esm/index.js', 'dist/esm/index.d.ts', 'dist/esm/package.json', 'dist/cjs/index.cjs', 'dist/types/index.d.ts', 'dist/push-client.browser.js']) {
      expect(files).toContain(`package/${f}`);
    }
    expect(files.filter((f) => /\/src\/|\.map$|\.spec\./.test(f))).toEqual([]);
    // Node warns (MODULE_TYPELESS_PACKAGE_JSON, Node >= 22) when it has to guess a .js file's
    // module system: every .js must have a package.json above it that says, and says right.
    const installed = join(app.dir, 'node_modules', '@push-gateway', 'client');
    const typeOf = (dir: string) => (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { type?: string }).type;
    expect(typeOf(installed)).toBe('commonjs');
    expect(typeOf(join(installed, 'dist', 'esm'))).toBe('module');
    expect(readFileSync(join(installed, 'dist', 'esm', 'index.js'), 'utf8')).toMatch(/^export \{/m);
  });

  it('works from Node ESM and from Node CJS: ready, then a notification received and acked, without a warning', async () => {
    writeFileSync(join(app.dir, 'esm.mjs'), CONSUMER(`import { createPushClient } from '@push-gateway/client';`));
    writeFileSync(join(app.dir, 'cjs.cjs'), CONSUMER(`const { createPushClient } = require('@push-gateway/client');`));
    for (const [file, deviceId] of [['esm.mjs', 'pkg-esm'], ['cjs.cjs', 'pkg-cjs']] as const) {
      const { id, stdout, stderr } = await receiveOne(file, deviceId);
      expect(stdout).toBe(`ready ${deviceId}\nnotification ${id} packed\n`);
      expect(stderr).toBe('');
      await waitFor(async () => ((await (await api(gw.url, `/v1/notifications/${id}`)).json()) as { targets: { status: string }[] }).targets[0]!.status === 'delivered');
    }
  }, 30_000);

  it('type-checks for TypeScript users of either module system, and the README React Native example compiles against it', async () => {
    for (const [name, files] of Object.entries(REACT_NATIVE_STUBS)) {
      mkdirSync(join(app.dir, 'node_modules', name), { recursive: true });
      for (const [file, text] of Object.entries(files)) writeFileSync(join(app.dir, 'node_modules', name, file), text);
    }
    const use = `const client = createPushClient({ url: 'http://localhost:3000', token: async () => 't', storage: { get: (k: string) => k, set: () => undefined } });
client.on('notification', (n: Notification, ctx) => { const id: number = (n.data as { orderId: number }).orderId; ctx.ack(); return id; });
client.on('heartbeat', (b) => b.interval.toFixed());
export const ttl: number | undefined = client.session?.heartbeat.ttl;
// @ts-expect-error the options are typed: a misspelt one is refused
createPushClient({ url: 'x', token: 't', autoack: false });
`;
    mkdirSync(join(app.dir, 'ts'), { recursive: true });
    writeFileSync(join(app.dir, 'ts', 'esm.mts'), `import { createPushClient, type Notification } from '@push-gateway/client';\n${use}`);
    writeFileSync(join(app.dir, 'ts', 'cjs.cts'), `import { createPushClient, type Notification } from '@push-gateway/client';\n${use}`);
    writeFileSync(join(app.dir, 'ts', 'push.ts'), readmeBlock('// push.ts (React Native)'));
    const tsconfig = { compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, outDir: '../out', types: [], lib: ['es2022', 'dom'] }, include: ['.'] };
    writeFileSync(join(app.dir, 'ts', 'tsconfig.json'), JSON.stringify(tsconfig));
    // Emitting: the React Native example runs in the next test. Any unresolved import or type error fails here.
    await run(process.execPath, [TSC, '-p', 'ts/tsconfig.json'], { cwd: app.dir });
    expect(existsSync(join(app.dir, 'out', 'push.js'))).toBe(true);
  }, 60_000);

  it('runs the README React Native example: AsyncStorage keeps the learning, AppState and NetInfo reach the gateway', async () => {
    if (!existsSync(join(app.dir, 'out', 'push.js'))) throw new Error('needs the compiled example of the previous test');
    writeFileSync(
      join(app.dir, 'rn-run.mjs'),
      `import { createInterface } from 'node:readline';
import { startPush } from './out/push.js';
import * as rn from 'react-native';
import * as netinfo from '@react-native-community/netinfo';
import * as storage from '@react-native-async-storage/async-storage';
const [url, token] = process.argv.slice(2);
const stop = await startPush(url, async () => token, (n) => console.log('notification ' + n.id));
console.log('started');
for await (const line of createInterface({ input: process.stdin })) {
  const [cmd, ...args] = line.split(' ');
  if (cmd === 'app') rn.__set(args[0]);
  if (cmd === 'cell') netinfo.__set({ type: 'cellular', isConnected: true, isInternetReachable: true, details: { carrier: args.join(' '), cellularGeneration: '5g', isConnectionExpensive: true } });
  if (cmd === 'stop') {
    stop();
    console.log('listeners ' + rn.__listeners() + ' ' + netinfo.__listeners());
    console.log('read ' + [...storage.__reads].join(' '));
    process.exit(0);
  }
  console.log('done ' + cmd);
}
`,
    );
    const deviceId = 'pkg-rn';
    const rn = start(process.execPath, ['rn-run.mjs', gw.url, deviceToken({ sub: 'pkg-user', deviceId })], { cwd: app.dir });
    const device = async () => (await (await api(gw.url, `/v1/devices/${deviceId}`)).json()) as { online?: boolean; appState?: string; network?: string };
    try {
      await rn.waitForLine(/^started$/m);
      // NetInfo.fetch() said Wi-Fi "Home Wi-Fi 5G" and AppState 'active': the first beat says both.
      await waitFor(async () => {
        const d = await device();
        return d.online === true && d.network === 'wifi:Home_Wi-Fi_5G' && d.appState === 'foreground';
      });
      rn.send('app background');
      await waitFor(async () => (await device()).appState === 'background');
      rn.send('cell Carrier & Co');
      await waitFor(async () => (await device()).network === 'cell:Carrier___Co');
      const id = await notify(deviceId, 'rn');
      await rn.waitForLine(new RegExp(`^notification ${id}$`, 'm'));
      rn.send('stop');
      expect(await rn.exited).toBe(0);
      expect(rn.stdout()).toMatch(/^listeners 0 0$/m); // the cleanup the example returns removes both listeners
      // Each network's learning was looked up in AsyncStorage through the adapter.
      expect(rn.stdout()).toMatch(/^read .*push-gateway:heartbeat:wifi:Home_Wi-Fi_5G.*push-gateway:heartbeat:cell:Carrier___Co/m);
      expect(rn.stderr()).toBe('');
    } finally {
      rn.child.kill();
    }
  }, 30_000);

  it('works in a browser page from the bundle the package exports (@push-gateway/client/browser)', async () => {
    const bundle = createRequire(join(app.dir, 'package.json')).resolve('@push-gateway/client/browser');
    expect(dirname(bundle)).toBe(join(app.dir, 'node_modules', '@push-gateway', 'client', 'dist'));
    const html = `<!doctype html><meta charset="utf-8"><title>sdk</title><ul id="got"></ul>
<script src="/push-client.browser.js"></script>
<script>
  const q = new URLSearchParams(location.search);
  const client = PushGateway.createPushClient({ url: q.get('gw'), token: q.get('token'), storage: PushGateway.localStorageStorage() });
  client.on('ready', (r) => { document.body.dataset.ready = r.deviceId; });
  client.on('notification', (n) => { const li = document.createElement('li'); li.dataset.id = n.id; li.textContent = n.title; document.getElementById('got').append(li); });
</script>`;
    pages = createServer((req, res) => {
      if (req.url?.startsWith('/push-client.browser.js')) res.writeHead(200, { 'content-type': 'text/javascript' }).end(readFileSync(bundle));
      else res.writeHead(200, { 'content-type': 'text/html' }).end(html);
    });
    await new Promise<void>((resolve) => pages!.listen(0, '127.0.0.1', resolve));
    browser = await launchChromium();
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    const deviceId = 'pkg-browser';
    const query = new URLSearchParams({ gw: gw.url, token: deviceToken({ sub: 'pkg-user', deviceId }) });
    await page.goto(`http://127.0.0.1:${(pages.address() as AddressInfo).port}/?${query.toString()}`);
    await page.waitForSelector(`body[data-ready="${deviceId}"]`, { state: 'attached', timeout: 10_000 });
    const id = await notify(deviceId, 'to the page');
    expect(await page.locator(`li[data-id="${id}"]`).textContent({ timeout: 5_000 })).toBe('to the page');
    expect(errors).toEqual([]);
  }, 30_000);
});
