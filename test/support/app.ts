import { INestApplication } from '@nestjs/common';
import { io, Socket } from 'socket.io-client';
import { createApp } from '../../src/app.factory';
import { Clock } from '../../src/common/clock';
import { AppConfig, loadConfig } from '../../src/config/app-config';
import { clusterSwitch } from './redis';
import { TEST_API_KEY, TEST_JWT_SECRET } from './tokens';

export interface TestApp {
  app: INestApplication;
  config: AppConfig;
  url: string;
  close(): Promise<void>;
}

/**
 * Boots the real application on a loopback port with test keys and the given variables (against
 * the run's cluster instead of its Redis under `npm run test:cluster`: clusterSwitch).
 */
export async function startTestApp(env: Record<string, string | undefined>, clock?: Clock): Promise<TestApp> {
  env = clusterSwitch(env);
  const config = loadConfig({
    API_KEYS: TEST_API_KEY,
    DEVICE_JWT_SECRET: TEST_JWT_SECRET,
    LOG_LEVEL: 'silent',
    // A test process is not a production one: other suites load its event loop. Shedding is off
    // unless a test is about it (test/overload.e2e-spec.ts).
    LOAD_SHED_DELAY_MS: '0',
    REST_QUEUE_TARGET_MS: '0',
    // The app shares its event loop with Jest's worker: under the suite's load a reply can wait
    // a second there. Tests that stall or kill Redis set their own (300-500 ms).
    REDIS_COMMAND_TIMEOUT_MS: '3000',
    // Tests about heartbeat policy use short intervals and exact TTLs (2.5 intervals); the TCP slack
    // has its own tests (heartbeat-policy.spec.ts, test/netlab-presence.e2e-spec.ts on real links).
    HEARTBEAT_TTL_SLACK_MS: '0',
    PORT: '0',
    HOST: '127.0.0.1',
    ...env,
  });
  const app = await createApp(config, clock);
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as { port: number };
  return { app, config, url: `http://127.0.0.1:${port}`, close: () => app.close() };
}

export function connectDevice(url: string, token: string | undefined, opts: { transports?: string[]; auth?: object } = {}): Socket {
  return io(url, {
    auth: { ...(token === undefined ? {} : { token }), ...opts.auth },
    transports: opts.transports ?? ['websocket'],
    reconnection: false,
    forceNew: true,
  });
}

/**
 * How long the helpers below wait by default: 5 s, 10 s in the cluster project's files, whose
 * gateways do a round trip per partition and share CI's two cores with the Cluster's six servers
 * (a suite there once timed out waiting 5 s for an event). A wait only ends a run that is failing.
 */
const DEFAULT_WAIT_MS = process.env.TEST_REDIS_CLUSTER_NODES ? 10_000 : 5_000;

/** Resolves with the next `event` on the socket, rejects after `timeoutMs`. */
export function nextEvent<T = unknown>(socket: Socket, event: string, timeoutMs = DEFAULT_WAIT_MS): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${event}" within ${timeoutMs} ms`)), timeoutMs);
    socket.once(event, (payload: T) => {
      clearTimeout(timer);
      resolve(payload);
    });
  });
}

/** Resolves with whichever of `events` comes first (and stops listening for the others). */
export function firstEvent(socket: Socket, events: string[], timeoutMs = DEFAULT_WAIT_MS): Promise<{ event: string; payload: unknown }> {
  return new Promise((resolve, reject) => {
    const listeners = events.map((event) => [event, (payload: unknown) => done({ event, payload })] as const);
    const done = (result: { event: string; payload: unknown } | Error) => {
      clearTimeout(timer);
      for (const [event, listener] of listeners) socket.off(event, listener);
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const timer = setTimeout(() => done(new Error(`none of ${events.join(', ')} within ${timeoutMs} ms`)), timeoutMs);
    for (const [event, listener] of listeners) socket.once(event, listener);
  });
}

export function api(base: string, path: string, init: RequestInit & { json?: unknown; key?: string | null } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.key !== null) headers.set('authorization', `Bearer ${init.key ?? TEST_API_KEY}`);
  if (init.json !== undefined) headers.set('content-type', 'application/json');
  return fetch(base + path, { ...init, headers, body: init.json !== undefined ? JSON.stringify(init.json) : init.body });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns true or `timeoutMs` passes. */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = DEFAULT_WAIT_MS, stepMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(stepMs);
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}

/** One series of the app's /metrics (the name with its labels as printed), 0 while it is absent. */
export async function metric(url: string, series: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** Waits until `series` reaches `min`: the barrier for "the server has done X". */
export async function metricReaches(url: string, series: string, min: number, timeoutMs = 5_000): Promise<void> {
  let last = 0;
  await waitFor(async () => (last = await metric(url, series)) >= min, timeoutMs).catch(() => {
    throw new Error(`${series} stayed at ${last}, expected >= ${min} within ${timeoutMs} ms`);
  });
}

/**
 * Resolves once two sweeps have finished since the call. Sweeps never overlap, so the second one
 * started after the first ended, and therefore read the clock after anything the test did before
 * calling this (say, advancing a FakeClock): what that sweep did not retire, it never will.
 */
export async function sweepsRan(url: string, timeoutMs = 5_000): Promise<void> {
  const series = 'push_gateway_sweep_seconds_count';
  await metricReaches(url, series, (await metric(url, series)) + 2, timeoutMs);
}

/**
 * Waits until every push the app emitted has its outcome (acked, or given up after
 * ACK_TIMEOUT_MS). Closing an app earlier leaves Socket.IO's ack timers running after close().
 */
export async function pushesSettled(url: string, timeoutMs = 5_000): Promise<void> {
  await waitFor(async () => {
    const [sent, acked, unacked] = await Promise.all(
      ['push_gateway_pushes_sent_total', 'push_gateway_pushes_acked_total', 'push_gateway_pushes_unacked_total'].map((s) => metric(url, s)),
    );
    return sent === (acked ?? 0) + (unacked ?? 0);
  }, timeoutMs);
}
