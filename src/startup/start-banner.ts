import jwt from 'jsonwebtoken';
import { AppConfig } from '../config/app-config';
import { DEMO_DEVICE_ID, DEMO_USER_ID } from '../demo/demo.controller';
import { describeRedisTarget } from '../redis/redis-connection';

/** The address a person on this machine types: a wildcard bind is reached through localhost. */
export function reachableUrl(host: string, port: number): string {
  const name = host === '0.0.0.0' || host === '::' || host === '' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  return `http://${name}:${port}`;
}

/** Single quotes for a POSIX shell. */
const sh = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;

/** Where it listens and on what store, in one line. */
export function startSummary(config: AppConfig, port: number): string {
  const store = config.redis ? `Redis at ${describeRedisTarget(config.redis)}` : 'the embedded store (one instance, nothing survives a restart)';
  return `push-gateway ${config.instanceId} is listening on ${reachableUrl(config.host, port)} (bound to ${config.host}:${port}), on ${store}`;
}

/** Whether the start has something to hand a person: the demo, or credentials generated for this run. */
export function hasSomethingToTry(config: AppConfig): boolean {
  return config.demo.enabled || Object.keys(config.generated).length > 0;
}

/**
 * The block `npm start` ends with: where it listens and on what store, then, when there is
 * something to try (the demo on, credentials generated for this run), the demo URL, the
 * credentials, a device token for the demo device and a curl that reaches that device. Real API
 * keys are never printed: the curl then says `$API_KEY`.
 */
export function startBanner(config: AppConfig, port: number): string {
  const url = reachableUrl(config.host, port);
  const lines = [startSummary(config, port)];
  const generated = Object.entries(config.generated);
  if (config.demo.enabled) lines.push(`  demo page:  ${url}/demo  (connects as device ${DEMO_DEVICE_ID}; /demo?device=demo-<name> for another)`);
  if (generated.length > 0) {
    lines.push('  generated for this run only (set them to keep them):');
    for (const [name, value] of generated) lines.push(`    ${name}=${value}`);
  }
  if (hasSomethingToTry(config)) {
    if (config.jwt.kind === 'secret') {
      const token = jwt.sign({ sub: DEMO_USER_ID, deviceId: DEMO_DEVICE_ID, platform: 'web' }, config.jwt.secret, { algorithm: 'HS256', expiresIn: '24h' });
      lines.push(`  demo device token (sub=${DEMO_USER_ID}, deviceId=${DEMO_DEVICE_ID}, 24 h):`, `    ${token}`);
    }
    const key = config.generated.API_KEYS ? sh(`Authorization: Bearer ${config.generated.API_KEYS}`) : '"Authorization: Bearer $API_KEY"';
    const body = sh(JSON.stringify({ deviceIds: [DEMO_DEVICE_ID], title: 'Hello', data: { from: 'curl' } }));
    lines.push(`  send ${DEMO_DEVICE_ID} a notification:`, `    curl -s -w '\\n' -X POST ${url}/v1/notifications -H ${key} -H 'Content-Type: application/json' -d ${body}`);
  }
  return `\n${lines.join('\n')}\n\n`;
}
