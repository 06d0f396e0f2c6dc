import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type Json = Record<string, any>;

const ROOT = join(__dirname, '..');

/** Runs `npm run simulate`'s script (on the built dist/) with its own throwaway redis-server(s). */
function simulate(args: string[], out: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bench/simulate.mjs', ...args, '--out', out, '--docs', join(out, 'capacity.md')], { cwd: ROOT });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('exit', (code) => resolve({ code, output }));
  });
}

const SHORT = ['--devices', '1500', '--seconds', '3', '--hb-seconds', '1', '--publish-seconds', '1', '--publish-rate', '300', '--throughput-seconds', '1', '--workers', '1', '--concurrency', '200', '--sweep-expired', '200'];

/** The capacity simulation (bench/simulate.mjs) runs end to end and reports figures in a sane range. */
describe('npm run simulate (short run)', () => {
  const out = mkdtempSync(join(tmpdir(), 'pg-simulate-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('measures memory, per-operation costs, sweeps and throughput against its own Redis, and writes the capacity page', async () => {
    const { code, output } = await simulate(SHORT, out);
    expect({ code, output: code === 0 ? '' : output }).toEqual({ code: 0, output: '' });
    const file = readdirSync(out).find((f) => /^simulate-\d{4}-\d{2}-\d{2}\.json$/.test(f));
    const r = JSON.parse(readFileSync(join(out, file!), 'utf8')) as Json;
    const p = r.phases;

    expect(r.failed).toBeUndefined();
    expect(r.counters.errors).toEqual({});
    // A device costs Redis hundreds of bytes, not tens or tens of thousands; offline less than online.
    expect(p.fill.bytesPerOnlineDevice).toBeGreaterThan(200);
    expect(p.fill.bytesPerOnlineDevice).toBeLessThan(5_000);
    expect(p.offline.bytesPerOfflineKnownDevice).toBeGreaterThan(50);
    expect(p.offline.bytesPerOfflineKnownDevice).toBeLessThan(p.fill.bytesPerOnlineDevice);
    expect(p.fill.eventLog.bytesPerEvent).toBeGreaterThan(20);
    // At most one script call per heartbeat (heartbeats that arrive together share one), a
    // handful of commands inside it for each (at least the presence key's SET and the record's
    // HSET); a publish does more.
    expect(p.heartbeats.roundTrips).toBeGreaterThan(0);
    expect(p.heartbeats.roundTrips).toBeLessThanOrEqual(1);
    expect(p.heartbeats.commands).toBeGreaterThan(2);
    expect(p.heartbeats.commands).toBeLessThan(15);
    expect(p.heartbeats.cpuUs).toBeGreaterThan(0);
    expect(p.heartbeats.netInBytes).toBeGreaterThan(100);
    expect(p.publish.publishes).toBeGreaterThan(0);
    expect(p.publish.commands).toBeGreaterThan(p.heartbeats.commands);
    expect(p.publish.acksPerPublish).toBeGreaterThan(0);
    // Every sweep probe claimed exactly what expired (the tool checks it) in bounded time.
    expect(p.sweep.probes.map((x: Json) => x.expired)).toEqual([200, 2_000]);
    for (const probe of p.sweep.probes) expect(probe.ms).toBeGreaterThan(0);
    expect(p.throughput.heartbeatsPerSecond).toBeGreaterThan(0);
    expect(p.throughput.refused + p.throughput.errors).toBe(0);
    expect(p.throughput.ceilingEstimate).toBeGreaterThan(0);
    expect(p.mix.perSecond.heartbeats).toBeGreaterThan(0);
    expect(p.mix.perMaster).toHaveLength(1);
    expect(p.mix.perMaster[0].callShare).toBe(1);
    expect(r.final.keys).toBeGreaterThan(1_500);

    const page = readFileSync(join(out, 'capacity.md'), 'utf8');
    expect(page).toContain('## Sizing');
    for (const size of ['100k devices', '1M devices', '10M devices', '100M devices'].map((s) => s.split(' ')[0])) expect(page).toContain(`| ${size} `);
    expect(page).toContain(r.command);
    for (const chart of ['capacity-sweep.svg', 'capacity-masters-needed.svg']) {
      expect(readFileSync(join(out, chart), 'utf8')).toMatch(/^<svg [^>]*>[\s\S]*<\/svg>\n$/);
    }
  }, 90_000);

  it('counts keys and commands per master on a 3-master Cluster it starts', async () => {
    const { code, output } = await simulate([...SHORT, '--devices', '1000', '--cluster'], out);
    expect({ code, output: code === 0 ? '' : output }).toEqual({ code: 0, output: '' });
    const r = JSON.parse(readFileSync(join(out, readdirSync(out).find((f) => f.endsWith('-cluster.json'))!), 'utf8')) as Json;
    expect(r.redis.kind).toBe('cluster');
    // Every store call succeeded on the Cluster: a script sent without keys (the disconnect once)
    // lands on a random master and fails there 2 times in 3.
    expect(r.counters.errors).toEqual({});
    expect(r.phases.offline.eventsPerDisconnect).toBeGreaterThanOrEqual(1);
    expect(r.final.perMaster).toHaveLength(3);
    expect(r.final.perMaster.reduce((s: number, m: Json) => s + m.keys, 0)).toBe(r.final.keys);
    const shares = r.phases.throughput.perMaster.map((m: Json) => m.callShare) as number[];
    expect(shares.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 1);
    // Partitioned keys: every master holds about a third of the keys and does about a third of the heartbeats.
    for (const share of shares) expect(share).toBeGreaterThan(0.2);
    for (const m of r.final.perMaster as Json[]) expect(m.keys / r.final.keys).toBeGreaterThan(0.2);
    expect(r.phases.throughput.heartbeatsPerSecond).toBeGreaterThan(0);
    // The page now has the Cluster's per-master table and chart.
    expect(readFileSync(join(out, 'capacity.md'), 'utf8')).toContain('Keys and commands per master in the Cluster run');
    expect(existsSync(join(out, 'capacity-masters.svg'))).toBe(true);
  }, 90_000);

  it('refuses bad options with a clear message', async () => {
    const { code, output } = await simulate(['--devices', 'many'], out);
    expect(code).toBe(2);
    expect(output).toContain('--devices must be an integer >= 100 (got many)');
  });
});
