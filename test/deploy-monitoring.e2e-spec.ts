import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunningGateway, startGateway } from './support/gateways';
import { testRedisUrl, uniquePrefix } from './support/redis';

/**
 * The monitoring profile's files: the Grafana dashboard queries only metrics a running gateway
 * exposes, its PromQL parses, and Prometheus's config passes `promtool check config` (Debian's
 * prometheus package, installed by .ci/run; the promtool checks are skipped without it).
 */
const DEPLOY = join(__dirname, '..', 'deploy');
const dashboard = JSON.parse(readFileSync(join(DEPLOY, 'grafana', 'dashboards', 'push-gateway.json'), 'utf8'));
const expressions: string[] = dashboard.panels.flatMap((p: { targets?: { expr: string }[] }) => (p.targets ?? []).map((t) => t.expr));
/** Series Prometheus makes itself for every target, not the gateway. */
const PROMETHEUS_SERIES = new Set(['up']);
const OPS_TOKEN = 'ops-token-for-monitoring-test';

const PROMTOOL = spawnSync('promtool', ['--version']).status === 0;
if (!PROMTOOL) console.warn('deploy-monitoring: promtool checks skipped: no promtool (apt-get install prometheus)');

describe('the Grafana dashboard against a running gateway', () => {
  let gateway: RunningGateway;
  beforeAll(async () => {
    gateway = await startGateway('monitoring-gw', { REDIS_URL: testRedisUrl(), REDIS_PREFIX: uniquePrefix('monitoring'), OPS_TOKEN });
  });
  afterAll(() => gateway?.process.child.kill('SIGKILL'));

  it('queries only metric names that /metrics exposes (scraped with OPS_TOKEN, as Prometheus does)', async () => {
    expect((await fetch(`${gateway.url}/metrics`)).status).toBe(401);
    const res = await fetch(`${gateway.url}/metrics`, { headers: { authorization: `Bearer ${OPS_TOKEN}` } });
    expect(res.status).toBe(200);
    // Every name a scrape can hold: histogram series carry suffixes, and a labelled series exists
    // only once observed, but its # TYPE line is always there.
    const exposed = new Set<string>();
    for (const [, name = '', type] of (await res.text()).matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      exposed.add(name);
      if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exposed.add(name + suffix);
    }
    const queried = new Set(expressions.flatMap((e) => e.match(/\bpush_gateway_[a-z0-9_]+/g) ?? []));
    expect([...queried].filter((name) => !exposed.has(name))).toEqual([]);
    // Every expression selects something: a gateway metric or one of Prometheus's own series.
    const selectsNothing = expressions.filter((e) => !/\bpush_gateway_/.test(e) && ![...PROMETHEUS_SERIES].some((s) => new RegExp(`\\b${s}\\{`).test(e)));
    expect(selectsNothing).toEqual([]);
  });

  it('covers what an operator needs: connections per instance, heartbeats, pushes, acks, receipt latency, sweeps, Redis', () => {
    const all = expressions.join('\n');
    for (const needed of [
      /sum by \(instance\) \(push_gateway_connected_devices\)/,
      /rate\(push_gateway_heartbeats_total/,
      /rate\(push_gateway_pushes_sent_total/,
      /rate\(push_gateway_pushes_acked_total/,
      /histogram_quantile\(.*push_gateway_push_ack_seconds_bucket/,
      /push_gateway_sweep_seconds_count/,
      /push_gateway_redis_reconnects_total/,
    ]) {
      expect(all).toMatch(needed);
    }
  });
});

(PROMTOOL ? describe : describe.skip)('promtool', () => {
  const dir = mkdtempSync(join(tmpdir(), 'push-promtool-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const promtool = (...args: string[]) => spawnSync('promtool', args, { encoding: 'utf8' });

  it('accepts deploy/prometheus/prometheus.yml', () => {
    // promtool wants the bearer token file to exist; in compose the container writes it at start.
    const token = join(dir, 'ops_token');
    writeFileSync(token, OPS_TOKEN);
    const source = readFileSync(join(DEPLOY, 'prometheus', 'prometheus.yml'), 'utf8');
    expect(source).toContain('credentials_file: /prometheus/ops_token');
    const config = join(dir, 'prometheus.yml');
    writeFileSync(config, source.replace('/prometheus/ops_token', token));
    const run = promtool('check', 'config', config);
    expect([run.status, run.stdout + run.stderr]).toEqual([0, expect.stringContaining('SUCCESS')]);
  });

  it('parses every dashboard expression as PromQL', () => {
    // As recording rules, so promtool check rules parses each one; Grafana fills $__rate_interval.
    const rules = join(dir, 'dashboard-rules.yml');
    const lines = expressions.map((e, i) => `      - record: dashboard:expr_${i}\n        expr: ${JSON.stringify(e.replaceAll('$__rate_interval', '1m'))}`);
    writeFileSync(rules, `groups:\n  - name: dashboard\n    rules:\n${lines.join('\n')}\n`);
    const run = promtool('check', 'rules', rules);
    expect([run.status, run.stdout + run.stderr]).toEqual([0, expect.stringContaining(`${expressions.length} rules found`)]);
  });
});
