import 'reflect-metadata';
import jwt from 'jsonwebtoken';
import { createApp } from './app.factory';
import { AppConfig, ConfigError, loadConfig } from './config/app-config';
import { startWarnings } from './config/start-warnings';

function printDevSecrets(config: AppConfig): void {
  if (Object.keys(config.generated).length === 0) return;
  const lines = Object.entries(config.generated).map(([name, value]) => `  ${name}=${value}`);
  if (config.jwt.kind === 'secret') {
    const token = jwt.sign({ sub: 'demo-user', deviceId: 'demo-device', platform: 'web' }, config.jwt.secret, {
      algorithm: 'HS256',
      expiresIn: '24h',
    });
    lines.push(`  demo device token (sub=demo-user, deviceId=demo-device, 24 h):\n  ${token}`);
  }
  process.stdout.write(`\nDevelopment secrets, generated for this run only (set them to keep them):\n${lines.join('\n')}\n\n`);
}

function printWarnings(config: AppConfig): void {
  for (const warning of startWarnings(config)) process.stderr.write(`\n*** WARNING: ${warning}\n`);
}

// A stray rejection in a library must not take every device's connection down with the process.
process.on('unhandledRejection', (reason) => {
  process.stderr.write(`unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}\n`);
});

async function main(): Promise<void> {
  let config: AppConfig;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  printDevSecrets(config);
  printWarnings(config);
  const app = await createApp(config);
  // The drain runs in the shutdown hooks (DrainService); the grace timer bounds it, so the process
  // is gone before an orchestrator's SIGKILL (Docker's default is 10 s after SIGTERM).
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      setTimeout(() => {
        process.stderr.write(`shutdown took longer than SHUTDOWN_GRACE_MS=${config.shutdownGraceMs}, exiting\n`);
        process.exit(1);
      }, config.shutdownGraceMs).unref();
      app.close().then(
        () => process.exit(0),
        (err: Error) => {
          process.stderr.write(`shutdown failed: ${err.message}\n`);
          process.exit(1);
        },
      );
    });
  }
  await app.listen(config.port, config.host);
}

main().catch((err: Error) => {
  process.stderr.write(`push-gateway failed to start: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
