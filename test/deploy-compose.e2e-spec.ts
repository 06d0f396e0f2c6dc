import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * docker-compose.yml as an operator runs it, checked with `docker-compose config` (Debian's
 * docker-compose, installed by .ci/run; it validates and resolves the file without a Docker
 * engine). Every run gets a clean environment and an empty --env-file, so a developer's own .env
 * cannot change the outcome.
 */
const ROOT = join(__dirname, '..');
const COMPOSE = spawnSync('docker-compose', ['version'], { encoding: 'utf8' }).status === 0;
if (!COMPOSE) console.warn('deploy-compose: skipped: no docker-compose (apt-get install docker-compose)');
const describeCompose = COMPOSE ? describe : describe.skip;

/** The variables of README.md's configuration table. */
function readmeVariables(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const table = readme.slice(readme.indexOf('\n## Configuration'), readme.indexOf('\n## ', readme.indexOf('\n## Configuration') + 1));
  return [...table.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \|/gm)].map((m) => m[1]!);
}

/** What compose itself decides inside the container, and why (README says the same). */
const FIXED: Record<string, string | undefined> = {
  NODE_ENV: 'production', // this file is the production deployment
  PORT: '3000', // nginx connects to gateway:3000; the host port is HTTP_PORT
  HOST: '0.0.0.0', // reachable from nginx and Prometheus on the compose network
  INSTANCE_ID: undefined, // one value for every replica would make them one instance: each picks its own
};

const REQUIRED = { API_KEYS: 'k'.repeat(24), DEVICE_JWT_SECRET: 's'.repeat(40) };

describeCompose('docker-compose.yml', () => {
  const dir = mkdtempSync(join(tmpdir(), 'push-compose-'));
  const emptyEnvFile = join(dir, 'empty.env');
  writeFileSync(emptyEnvFile, '');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function config(env: Record<string, string>, ...args: string[]) {
    const run = spawnSync('docker-compose', ['--env-file', emptyEnvFile, ...args, 'config'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
      encoding: 'utf8',
    });
    return { status: run.status, out: run.stdout, err: run.stderr };
  }
  /** The resolved file as an object (python3-yaml comes with docker-compose). */
  function resolved(env: Record<string, string>, ...args: string[]): any {
    const { status, out, err } = config(env, ...args);
    if (status !== 0) throw new Error(`docker-compose config failed:\n${err}`);
    const json = spawnSync('python3', ['-c', 'import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'], { input: out, encoding: 'utf8' });
    return JSON.parse(json.stdout);
  }

  it('refuses to resolve without API_KEYS or DEVICE_JWT_SECRET, naming the variable', () => {
    const withoutKeys = config({ DEVICE_JWT_SECRET: REQUIRED.DEVICE_JWT_SECRET });
    expect(withoutKeys.status).not.toBe(0);
    expect(withoutKeys.err).toContain('set API_KEYS');
    const withoutSecret = config({ API_KEYS: REQUIRED.API_KEYS });
    expect(withoutSecret.status).not.toBe(0);
    expect(withoutSecret.err).toContain('set DEVICE_JWT_SECRET');
    expect(config({ API_KEYS: '', DEVICE_JWT_SECRET: REQUIRED.DEVICE_JWT_SECRET }).status).not.toBe(0);
  });

  it('resolves with a public key instead of the secret when the secret is set empty', () => {
    const env = resolved({ API_KEYS: REQUIRED.API_KEYS, DEVICE_JWT_SECRET: '', DEVICE_JWT_PUBLIC_KEY: 'pem' }).services.gateway.environment;
    expect(env).toMatchObject({ DEVICE_JWT_SECRET: '', DEVICE_JWT_PUBLIC_KEY: 'pem' });
  });

  it('with only the required secrets: the gateway\'s own defaults but two, nginx on 8080, monitoring in a profile', () => {
    const { services } = resolved(REQUIRED);
    // An empty value is unset for the gateway: it applies its documented default.
    const chosen = Object.entries(services.gateway.environment as Record<string, string>)
      .filter(([name, value]) => value !== '' && !(name in FIXED) && !(name in REQUIRED));
    expect(Object.fromEntries(chosen)).toEqual({ REDIS_URL: 'redis://redis:6379', TRUST_PROXY: '1' });
    expect(services.lb.ports.map((p: any) => p.published)).toEqual([8080]);
    // docker-compose v1 lists every service in `config`; `up` starts a profiled one only with it.
    const profiles = Object.fromEntries(Object.entries(services).map(([name, s]: [string, any]) => [name, s.profiles ?? []]));
    expect(profiles).toEqual({ redis: [], gateway: [], lb: [], prometheus: ['monitoring'], grafana: ['monitoring'] });
  });

  it('passes every README variable to the gateway except the fixed ones, HTTP_PORT to nginx (not PORT), OPS_TOKEN to Prometheus', () => {
    const variables = readmeVariables();
    expect(variables.length).toBeGreaterThan(40);
    const mine = Object.fromEntries(variables.map((name) => [name, `value-of-${name}`]));
    const { services } = resolved({ ...mine, HTTP_PORT: '9999', OPS_HTTP_PORT: '9998' });
    const env = services.gateway.environment as Record<string, string>;
    const wrong = variables.filter((name) => (name in FIXED ? env[name] !== FIXED[name] : env[name] !== mine[name]));
    expect(wrong).toEqual([]);
    // docker-compose v1 prints a short port spec with a host address as a string.
    expect(services.lb.ports).toEqual([{ published: 9999, target: 80 }, '127.0.0.1:9998:81/tcp']); // PORT was set too; operators: loopback only
    expect(services.prometheus.environment.OPS_TOKEN).toBe('value-of-OPS_TOKEN');
    // `config` prints the file's $$ escape back; the container's shell sees "$OPS_TOKEN".
    expect(services.prometheus.entrypoint.join(' ')).toMatch(/"\$\$?OPS_TOKEN" > \/prometheus\/ops_token/);
    expect(readFileSync(join(ROOT, 'deploy', 'prometheus', 'prometheus.yml'), 'utf8')).toContain('credentials_file: /prometheus/ops_token');
  });
});
