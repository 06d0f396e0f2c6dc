import { Browser } from 'playwright-core';
import { waitFor } from './support/app';
import { launchChromium } from './support/chromium';
import { freePort } from './support/find-redis';
import { run } from './support/outside-app';
import { GatewayProcess, spawnGateway } from './support/process';
import { TEST_API_KEY, TEST_JWT_SECRET } from './support/tokens';

/** What a newcomer sees: `npm start` (dist/main.js, nothing configured), its output and the demo page. */
describe('first run (dist/main.js)', () => {
  const running: GatewayProcess[] = [];
  let browser: Browser | undefined;
  afterAll(async () => {
    await browser?.close();
    running.splice(0).forEach((p) => p.child.exitCode === null && p.child.kill('SIGKILL'));
  });
  const spawn = (env: Record<string, string>) => {
    const gw = spawnGateway({ LOG_LEVEL: 'info', ...env });
    running.push(gw);
    return gw;
  };

  it('ends its start with one block (address, demo, key, token, a curl) that the demo page, open in Chromium, answers', async () => {
    const port = await freePort();
    // The newcomer's defaults, but a 1 s minimum interval so the visible page beats within the test.
    const gw = spawn({ PORT: String(port), HEARTBEAT_MIN_MS: '1000' });
    const [, curl] = await gw.waitForOutput(/send demo-device a notification:\n\s+(curl [^\n]+)\n/, 20_000);
    const out = gw.output();
    // The block is the last thing printed, after the logs, and the logs are lines a person reads.
    expect(out.trimEnd().endsWith(curl!)).toBe(true);
    const block = out.slice(out.lastIndexOf('push-gateway gw-'));
    expect(block).toMatch(new RegExp(`^push-gateway gw-[0-9a-f]+ is listening on http://127\\.0\\.0\\.1:${port} \\(bound to 127\\.0\\.0\\.1:${port}\\), on the embedded store`));
    const [, demoUrl] = block.match(/demo page: +(http:\S+\/demo) /)!;
    const [, apiKey] = block.match(/API_KEYS=(\S+)/)!;
    expect(block).toMatch(/DEVICE_JWT_SECRET=\S+/);
    expect(block).toMatch(/demo device token \(sub=demo-user, deviceId=demo-device, 24 h\):\n\s+eyJ\S+/);
    expect(curl).toContain(`Bearer ${apiKey}`);
    expect(out.split('\n').filter((l) => l.startsWith('{'))).toEqual([]);
    expect(out.split('\n').length).toBeLessThan(25); // no forty lines of module listing

    browser = await launchChromium();
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(demoUrl!);
    await page.waitForSelector('#state.online', { timeout: 10_000 });
    expect(await page.textContent('#device')).toBe('demo-device');
    // The schedule: visible, so the SDK beats at the minimum (1 s); the next beat counts down, the
    // TTL counts down between beats and is renewed by each: what the gateway granted the last beat
    // (2.5 intervals + 3 s slack + room for the round trip the SDK reported), so never past the
    // expiry the gateway holds, read after it (the page redraws every 200 ms, to 0.1 s), and well
    // above 2.5 intervals (a beat a second).
    await waitFor(async () => Number(await page.textContent('#beats')) >= 2, 10_000);
    expect(await page.textContent('#nextBeat')).toMatch(/^in [01]\.\d s \(every 1\.0 s\)$/);
    const ttl = async () => Number((await page.textContent('#ttl'))!.match(/^(\d+\.\d) s left/)![1]);
    const shown = await ttl();
    const presence = (await (await fetch(`http://127.0.0.1:${port}/v1/devices/demo-device`, { headers: { authorization: `Bearer ${apiKey}` } })).json()) as { expiresAt: number };
    expect(shown).toBeLessThanOrEqual((presence.expiresAt - Date.now()) / 1000 + 0.3);
    expect(shown).toBeGreaterThanOrEqual(4);
    let previous = await ttl();
    await waitFor(async () => {
      const now = await ttl();
      const fell = now < previous && now > 0;
      previous = now;
      return fell;
    }, 5_000, 150);

    // The printed curl, run as printed, reaches the page.
    const { stdout } = await run('bash', ['-c', curl!], { cwd: __dirname });
    const sent = JSON.parse(stdout) as { id: string; online: number };
    expect(sent.online).toBe(1);
    const item = page.locator(`li.notification[data-id="${sent.id}"]`);
    await item.waitFor({ timeout: 5_000 });
    expect(await item.textContent()).toContain('Hello');
    expect(await item.locator('.meta').textContent()).toMatch(new RegExp(`^id ${sent.id} · sent \\d{1,2}:\\d\\d:\\d\\d.* · received \\d{1,2}:\\d\\d:\\d\\d`));
    expect(errors).toEqual([]);
    await page.close();

    // Another device on request, only a demo-* id, and a clear 400 for anything else.
    const session = (query: string) => fetch(`${demoUrl}/session${query}`);
    expect(await (await session('?device=demo-2')).json()).toMatchObject({ deviceId: 'demo-2', userId: 'demo-user' });
    for (const bad of ['?device=phone-1', '?device=demo-%20x', '?device=demo-a&device=demo-b']) {
      const res = await session(bad);
      expect([bad, res.status]).toEqual([bad, 400]);
      expect(((await res.json()) as { message: string }).message).toContain('device must start with demo-');
    }
  }, 60_000);

  it('logs JSON lines in production, the address among them', async () => {
    const port = await freePort();
    const gw = spawn({ PORT: String(port), NODE_ENV: 'production', API_KEYS: TEST_API_KEY, DEVICE_JWT_SECRET: TEST_JWT_SECRET, OPS_TOKEN: 'ops-token-0123456789abcdef' });
    await gw.waitForOutput(/is listening on http:\/\/127\.0\.0\.1:\d+[^\n]*\n/, 20_000);
    const lines = gw.output().split('\n').filter(Boolean);
    const entries = lines.map((l) => JSON.parse(l) as { msg: string; context?: string });
    expect(entries.find((e) => e.context === 'Start')?.msg).toMatch(new RegExp(`is listening on http://127\\.0\\.0\\.1:${port} `));
    expect(gw.output()).not.toContain(TEST_API_KEY);
  }, 30_000);

  it('logs a JSON line per REST request, written in blocks: within a second, whole, and at exit those still held', async () => {
    const port = await freePort();
    const gw = spawn({ PORT: String(port), NODE_ENV: 'production', API_KEYS: TEST_API_KEY, DEVICE_JWT_SECRET: TEST_JWT_SECRET });
    await gw.waitForOutput(/is listening on/, 20_000);
    const post = (n: number) =>
      fetch(`http://127.0.0.1:${port}/v1/notifications`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_API_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ deviceIds: [`log-dev-${n}`], data: { n } }),
      }).then((res) => res.status);
    type Entry = { msg: string; req?: { method: string; url: string; remoteAddress: string }; res?: { statusCode: number } };
    const requests = () =>
      gw
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Entry)
        .filter((e) => e.msg === 'request completed');
    // Fewer bytes than a block: they leave on the timer, within LOG_FLUSH_MS.
    expect(await Promise.all([post(1), post(2), post(3)])).toEqual([202, 202, 202]);
    await waitFor(() => requests().length === 3, 5_000);
    expect(requests()[0]).toMatchObject({ req: { method: 'POST', url: '/v1/notifications', remoteAddress: '127.0.0.1' }, res: { statusCode: 202 } });
    // Many lines at once: every one whole (each parses above) and none lost.
    for (let i = 0; i < 10; i++) expect(await Promise.all(Array.from({ length: 20 }, (_, j) => post(100 + i * 20 + j)))).toEqual(Array(20).fill(202));
    await waitFor(() => requests().length === 203, 5_000);
    // Held when the process is told to stop: written at exit.
    expect(await Promise.all([post(4), post(5)])).toEqual([202, 202]);
    gw.child.kill('SIGTERM');
    expect(await gw.exited).toBe(0);
    expect(requests()).toHaveLength(205);
  }, 40_000);

  it('names Redis and its address (without the password) when it cannot reach it', async () => {
    const redisPort = await freePort(); // nothing listens there
    const gw = spawn({ PORT: String(await freePort()), REDIS_URL: `redis://:hunter2-secret@127.0.0.1:${redisPort}/0` });
    expect(await gw.exited).toBe(1);
    expect(gw.output()).toContain(
      `push-gateway failed to start: cannot reach Redis at redis://:***@127.0.0.1:${redisPort}/0 (REDIS_URL): connect ECONNREFUSED 127.0.0.1:${redisPort}\n`,
    );
    expect(gw.output()).not.toContain('hunter2');
    expect(gw.output()).not.toMatch(/\n\s+at /); // a sentence, not a stack trace
  }, 30_000);
});
