// First: what the modules below build while they load may wait until it is used.
import { endLoadDeferrals } from './startup/load-deferrals';
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from './app.factory';
import { AppConfig, ConfigError, loadConfig } from './config/app-config';
import { startWarnings } from './config/start-warnings';
import { flushLogs } from './logging/app-logger';
import { RedisUnreachableError } from './redis/redis-connection';
import { releaseStartupMemory } from './startup/release-memory';
import { hasSomethingToTry, startBanner, startSummary } from './startup/start-banner';

function printWarnings(config: AppConfig): void {
  for (const warning of startWarnings(config)) process.stderr.write(`\n*** WARNING: ${warning}\n`);
}

// A stray rejection in a library must not take every device's connection down with the process.
process.on('unhandledRejection', (reason) => {
  process.stderr.write(`unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}\n`);
});

async function main(): Promise<void> {
  endLoadDeferrals();
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
  // Built and listening: what the start-up took and no longer holds goes back (about 30 MB).
  releaseStartupMemory();
  // Last, so that nothing scrolls the address, the demo and the generated secrets away.
  const { port } = (app.getHttpServer() as Server).address() as AddressInfo;
  // The log lines so far come before what is written to stdout and stderr directly.
  flushLogs();
  printWarnings(config);
  // JSON logs stay JSON lines (a shipper reads them); the block is for a person, or for secrets only printed here.
  if (config.logFormat === 'json' && !hasSomethingToTry(config)) new Logger('Start').log(startSummary(config, port));
  else process.stdout.write(startBanner(config, port));
}

main().catch((err: Error) => {
  const detail = err instanceof RedisUnreachableError ? err.message : (err.stack ?? err.message);
  process.stderr.write(`push-gateway failed to start: ${detail}\n`);
  process.exit(1);
});
