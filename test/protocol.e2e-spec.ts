import Redis from 'ioredis';
import { join } from 'node:path';
import WebSocket from 'ws';
import { api, startTestApp, TestApp } from './support/app';
import { DocLine, fill, matchFrame, matchJson, readProtocolDoc, Scope } from './support/protocol-doc';
import { deleteKeys, testRedisUrl, uniquePrefix } from './support/redis';
import { deviceToken } from './support/tokens';

const DOC = join(__dirname, '..', 'docs', 'protocol.md');
const steps = readProtocolDoc(DOC);

function step(name: string): DocLine[] {
  const lines = steps.get(name);
  if (!lines?.length) throw new Error(`docs/protocol.md has no conformance block "${name}"`);
  return lines;
}

/**
 * One WebSocket as docs/protocol.md describes it. Pings are answered the way the document's
 * `ping` block says, whenever they come (the document's first rule); every other frame waits in
 * order for the next `←` line.
 */
class Wire {
  readonly frames: string[] = [];
  readonly sent: string[] = [];
  readonly pings: number[] = [];
  readonly openedAt = Date.now();
  closed = false;
  refused?: { status: number; body: string };
  private wake?: () => void;

  constructor(
    readonly ws: WebSocket,
    pingRule: { ping: string; pong: string },
  ) {
    ws.on('message', (data: Buffer) => {
      const frame = data.toString();
      if (frame === pingRule.ping) {
        this.pings.push(Date.now());
        this.send(pingRule.pong);
      } else {
        this.frames.push(frame);
      }
      this.wake?.();
    });
    ws.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => {
        this.refused = { status: res.statusCode ?? 0, body };
        this.closed = true;
        this.wake?.();
      });
    });
    ws.on('error', () => undefined); // a refused upgrade also errors; `refused` says why
  }

  send(frame: string): void {
    this.sent.push(frame);
    this.ws.send(frame);
  }

  /** Waits until `ready()` holds or the deadline passes (then throws `what`). */
  async until<T>(ready: () => T | undefined, what: string, timeoutMs = 5_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = ready();
      if (value !== undefined) return value;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: not within ${timeoutMs} ms (frames left: ${JSON.stringify(this.frames)})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  nextFrame(what: string): Promise<string> {
    return this.until(() => this.frames.shift(), `${what}: no frame`);
  }
}

/** Polls a REST read until its answer matches the document's (an ack is stored a moment after it arrives). */
async function restUntil(base: string, line: Extract<DocLine, { kind: 'rest' }>, answer: Extract<DocLine, { kind: 'answer' }>, scope: Scope) {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const res = await api(base, fill(line.path, scope), {
      method: line.method,
      ...(line.body === undefined ? {} : { json: JSON.parse(fill(line.body, scope)) as unknown }),
    });
    const text = await res.text();
    const trial = { ...scope };
    try {
      if (res.status !== answer.status) throw new Error(`${line.method} ${line.path}: ${res.status} ${text}, the document shows ${answer.status}`);
      matchJson(answer.body, JSON.parse(text), trial);
      Object.assign(scope, trial);
      return;
    } catch (err) {
      // A POST is sent once; a read may still show the state before the ack.
      if (line.method !== 'GET' || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

describe('docs/protocol.md, performed on a raw WebSocket', () => {
  const prefix = uniquePrefix('protocol');
  let redis: Redis;
  let gw: TestApp;
  let base: Scope;
  const pingBlock = step('ping');
  const pingRule = {
    ping: (pingBlock.find((l) => l.kind === 'expect') as { frame: string }).frame,
    pong: (pingBlock.find((l) => l.kind === 'send') as { frame: string }).frame,
  };
  const wires: Wire[] = [];

  /** Performs one conformance block on `wire` (an `open` line makes a new one), binding into `scope`. */
  async function perform(name: string, scope: Scope, wire?: Wire): Promise<Wire | undefined> {
    const lines = step(name);
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      const where = `step "${name}", line ${i + 1}`;
      switch (line.kind) {
        case 'open':
          wire = new Wire(new WebSocket(fill(line.url, scope)), pingRule);
          wires.push(wire);
          break;
        case 'send':
          wire!.send(fill(line.frame, scope));
          break;
        case 'expect':
          matchFrame(line.frame, await wire!.nextFrame(where), scope);
          break;
        case 'refused': {
          const refused = await wire!.until(() => wire!.refused, `${where}: HTTP refusal`);
          expect(refused).toEqual({ status: line.status, body: line.body });
          break;
        }
        case 'server-close':
          await wire!.until(() => (wire!.closed ? true : undefined), `${where}: the server closes`);
          expect(wire!.frames).toEqual([]);
          break;
        case 'client-close':
          wire!.ws.close();
          await wire!.until(() => (wire!.closed ? true : undefined), `${where}: closed`);
          break;
        case 'rest': {
          const answer = lines[++i];
          if (answer?.kind !== 'answer') throw new Error(`${where}: a REST line must be followed by "= <status> <json>"`);
          await restUntil(gw.url, line, answer, scope);
          break;
        }
        case 'answer':
          throw new Error(`${where}: an answer without a REST line`);
      }
    }
    return wire;
  }

  beforeAll(async () => {
    redis = new Redis(testRedisUrl());
    // A 1 s heartbeat maximum makes the transport ping come every 2 s; the TTL slack keeps the
    // session alive through the steps without beats of the test's own (the document's only).
    gw = await startTestApp({
      REDIS_URL: testRedisUrl(),
      REDIS_PREFIX: prefix,
      HEARTBEAT_INTERVAL_MS: '1000',
      HEARTBEAT_MIN_MS: '500',
      HEARTBEAT_MAX_MS: '1000',
      HEARTBEAT_TTL_SLACK_MS: '10000',
    });
    const { heartbeat } = gw.config;
    const claims = { sub: 'user-7', deviceId: 'native-1', platform: 'android' };
    base = {
      host: gw.url.replace(/^http:\/\//, ''),
      token: deviceToken(claims),
      freshToken: deviceToken(claims, { expiresIn: '2h' }),
      expiredToken: deviceToken({ ...claims, exp: Math.floor(Date.now() / 1000) - 60 }, {}),
      network: 'wifi:protocol-test',
      deviceId: claims.deviceId,
      userId: claims.sub,
      platform: claims.platform,
      // What the document says these are.
      pingInterval: 2 * heartbeat.max,
      pingTimeout: 20_000,
      maxPayload: 65_536,
      interval: heartbeat.interval,
      min: heartbeat.min,
      max: heartbeat.max,
      ttl: 2.5 * heartbeat.interval + gw.config.heartbeatTtlSlackMs,
    };
  });
  afterAll(async () => {
    for (const w of wires) w.ws.terminate();
    await gw?.close();
    await deleteKeys(redis, prefix);
    redis.disconnect();
  });

  it('has every step the test performs, each once', () => {
    expect([...steps.keys()].sort()).toEqual(
      ['auth', 'connect', 'disconnect', 'error-ack', 'heartbeat', 'notification', 'open', 'no-transport', 'ping', 'protocol-3', 'refused', 'replaced'].sort(),
    );
  });

  it('open, connect, ready, heartbeat, an error ack, a notification acked, a token refresh, ping, a clean disconnect', async () => {
    const scope: Scope = { ...base };
    const wire = await perform('open', scope);
    await perform('connect', scope, wire);
    expect(scope.tokenExpiresAt).toBe(JSON.parse(Buffer.from(String(base.token).split('.')[1]!, 'base64url').toString()).exp * 1000);
    await perform('heartbeat', scope, wire);
    await perform('error-ack', scope, wire);
    await perform('notification', scope, wire);
    await perform('auth', scope, wire);
    expect(scope.freshTokenExpiresAt).toBeGreaterThan(Number(scope.tokenExpiresAt));

    // The transport ping: every pingInterval from the open, each answered with the document's pong.
    const pinged = wire!.pings.length;
    await wire!.until(() => (wire!.pings.length > pinged ? true : undefined), 'a ping', Number(scope.pingInterval) + 2_000);
    const [first] = wire!.pings;
    expect(first! - wire!.openedAt).toBeGreaterThanOrEqual(Number(scope.pingInterval) - 50);
    expect(first! - wire!.openedAt).toBeLessThan(Number(scope.pingInterval) + 1_000);
    expect(wire!.sent.filter((f) => f === pingRule.pong)).toHaveLength(wire!.pings.length);

    await perform('disconnect', scope, wire);
  }, 30_000);

  it('a second connection of the device replaces the first: session_replaced, 41, closed', async () => {
    const first: Scope = { ...base };
    const old = await perform('open', first);
    await perform('connect', first, old);
    const second: Scope = { ...base };
    await perform('connect', second, await perform('open', second));
    expect(second.sessionId).not.toBe(first.sessionId);
    await perform('replaced', first, old);
  });

  it('an expired token is refused with 44 and its code', async () => {
    await perform('refused', { ...base });
  });

  it('an Engine.IO 3 client gets no open packet, and its polling handshake a 400', async () => {
    await perform('protocol-3', { ...base });
  });

  it('an upgrade without transport=websocket is refused with 400 and the reason', async () => {
    await perform('no-transport', { ...base });
  });
});
