import { INestApplication } from '@nestjs/common';
import { io, Socket } from 'socket.io-client';
import { createApp } from '../../src/app.factory';
import { Clock } from '../../src/common/clock';
import { AppConfig, loadConfig } from '../../src/config/app-config';
import { TEST_API_KEY, TEST_JWT_SECRET } from './tokens';

export interface TestApp {
  app: INestApplication;
  config: AppConfig;
  url: string;
  close(): Promise<void>;
}

/** Boots the real application on a loopback port with test keys and the given variables. */
export async function startTestApp(env: Record<string, string | undefined>, clock?: Clock): Promise<TestApp> {
  const config = loadConfig({
    API_KEYS: TEST_API_KEY,
    DEVICE_JWT_SECRET: TEST_JWT_SECRET,
    LOG_LEVEL: 'silent',
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

/** Resolves with the first event among `events`, rejects after `timeoutMs`. */
export function nextEvent<T = unknown>(socket: Socket, event: string, timeoutMs = 5_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${event}" within ${timeoutMs} ms`)), timeoutMs);
    socket.once(event, (payload: T) => {
      clearTimeout(timer);
      resolve(payload);
    });
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
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 5_000, stepMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(stepMs);
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}
