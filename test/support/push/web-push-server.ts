import { createECDH, createPublicKey, ECDH, randomBytes, randomUUID } from 'node:crypto';
import { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, Server } from 'node:https';
import { AddressInfo } from 'node:net';
import * as ece from 'http_ece';
import * as jwt from 'jsonwebtoken';
import { ReplyScript, waitForCount } from './replies';
import { testTls } from './tls';

/** A browser push subscription made in the test, with the private half only the "browser" holds. */
export interface TestSubscription {
  id: string;
  /** What the browser's `PushSubscription.toJSON()` would give, to register with the gateway. */
  json: { endpoint: string; expirationTime: null; keys: { p256dh: string; auth: string } };
  ecdh: ECDH;
  auth: string;
}

/** One request as the push service saw it, checked and decrypted. */
export interface ReceivedWebPush {
  subscriptionId: string;
  headers: { ttl?: string; urgency?: string; topic?: string; contentEncoding?: string; authorization?: string };
  /** The VAPID claims, when the JWT verified against `k`. */
  vapid?: { aud: string; sub: string; exp: number; publicKey: string };
  /** The decrypted body parsed as JSON, when it decrypted. */
  payload?: unknown;
  /** What failed the checks (empty when the request was right). */
  problems: string[];
  status: number;
}

/**
 * A Web Push service on loopback HTTPS (RFC 8030): `POST /push/<id>` checks the VAPID header
 * (RFC 8292: ES256 JWT verified against `k`, `aud` = this origin, `exp` within 24 h, `sub`
 * mailto:/https:) and decrypts the `aes128gcm` body (RFC 8291) with the subscription's private key.
 * Right requests get 201; wrong ones 400/401 with the problems recorded. `script` overrides replies.
 * Unknown subscriptions get 410 (as a real service does for an expired one), bodies over 4096
 * bytes 413.
 */
export class WebPushTestServer {
  readonly received: ReceivedWebPush[] = [];
  readonly script = new ReplyScript();
  /** Requests received and not answered yet, and the most there ever were at once. */
  inFlight = 0;
  maxInFlight = 0;
  private readonly subscriptions = new Map<string, TestSubscription>();
  private server?: Server;

  /** Starts on 127.0.0.1 with a random port. */
  static async start(): Promise<WebPushTestServer> {
    const s = new WebPushTestServer();
    const tls = testTls();
    s.server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => s.handle(req, res));
    await new Promise<void>((resolve) => s.server?.listen(0, '127.0.0.1', resolve));
    return s;
  }

  get origin(): string {
    return `https://127.0.0.1:${(this.server?.address() as AddressInfo).port}`;
  }

  /** NODE_EXTRA_CA_CERTS for gateway processes that send here. */
  get caFile(): string {
    return testTls().caFile;
  }

  get caPem(): string {
    return testTls().cert;
  }

  /** A fresh subscription (P-256 keys + 16-byte auth secret) whose endpoint is on this server. */
  subscribe(): TestSubscription {
    const id = randomUUID();
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const auth = randomBytes(16).toString('base64url');
    const sub: TestSubscription = {
      id,
      ecdh,
      auth,
      json: {
        endpoint: `${this.origin}/push/${id}`,
        expirationTime: null,
        keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth },
      },
    };
    this.subscriptions.set(id, sub);
    return sub;
  }

  /** Forgets a subscription: later pushes to it get 410 Gone. */
  unsubscribe(id: string): void {
    this.subscriptions.delete(id);
  }

  receivedFor(subscriptionId: string): ReceivedWebPush[] {
    return this.received.filter((r) => r.subscriptionId === subscriptionId);
  }

  waitForRequests(n: number, timeoutMs?: number): Promise<void> {
    return waitForCount(() => this.received.length, n, 'web push requests', timeoutMs);
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    let counted = true;
    const done = (): void => {
      if (counted) this.inFlight -= 1;
      counted = false;
    };
    res.on('close', done);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    // Recorded and checked on arrival; a held script only delays the answer.
    req.on('end', () => {
      const { record, reply } = this.inspect(req, Buffer.concat(chunks));
      void this.script.gate().then(() => this.answer(req, res, record, reply));
    });
  }

  private inspect(req: IncomingMessage, body: Buffer): { record: ReceivedWebPush; reply: { status: number; body?: unknown } } {
    const match = /^\/push\/([0-9a-f-]+)$/.exec(req.url ?? '');
    const record: ReceivedWebPush = {
      subscriptionId: match?.[1] ?? '',
      headers: {
        ttl: header(req, 'ttl'),
        urgency: header(req, 'urgency'),
        topic: header(req, 'topic'),
        contentEncoding: header(req, 'content-encoding'),
        authorization: header(req, 'authorization'),
      },
      problems: [],
      status: 0,
    };
    this.received.push(record);
    const sub = this.subscriptions.get(record.subscriptionId);
    if (req.method !== 'POST' || !match) record.problems.push(`unexpected ${req.method} ${req.url}`);
    else if (!sub) return { record, reply: { status: 410, body: 'push subscription has unsubscribed or expired' } };
    // RFC 8030 7.2: services must take 4096 bytes of body and may refuse more (the major ones do).
    else if (body.length > 4096) return { record, reply: { status: 413, body: `payload of ${body.length} bytes is over 4096` } };
    else this.check(body, sub, record);
    const reply = record.problems.length ? { status: record.vapid ? 400 : 401, body: record.problems.join('; ') } : { status: 201 };
    return { record, reply };
  }

  private answer(req: IncomingMessage, res: ServerResponse, record: ReceivedWebPush, reply: { status: number; body?: unknown }): void {
    const scripted = this.script.next();
    if (scripted && 'drop' in scripted) {
      record.status = -1;
      req.socket.destroy();
      return;
    }
    send(res, record, scripted ?? reply);
  }

  private check(body: Buffer, sub: TestSubscription, record: ReceivedWebPush): void {
    const problems = record.problems;
    if (!/^\d+$/.test(record.headers.ttl ?? '')) problems.push(`TTL header missing or not a number: ${record.headers.ttl}`);
    if (record.headers.urgency && !['very-low', 'low', 'normal', 'high'].includes(record.headers.urgency)) problems.push(`bad Urgency ${record.headers.urgency}`);
    if (record.headers.topic !== undefined && !/^[A-Za-z0-9_-]{1,32}$/.test(record.headers.topic)) problems.push(`bad Topic ${record.headers.topic}`);
    if (record.headers.contentEncoding !== 'aes128gcm') problems.push(`Content-Encoding is ${record.headers.contentEncoding}, not aes128gcm`);
    this.checkVapid(record);
    try {
      const plain = ece.decrypt(body, { version: 'aes128gcm', privateKey: sub.ecdh, authSecret: sub.auth });
      record.payload = JSON.parse(plain.toString('utf8'));
    } catch (error) {
      problems.push(`payload did not decrypt to JSON: ${(error as Error).message}`);
    }
  }

  private checkVapid(record: ReceivedWebPush): void {
    const m = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(record.headers.authorization ?? '');
    if (!m) return void record.problems.push(`Authorization is not "vapid t=…, k=…": ${record.headers.authorization}`);
    const [, token, k] = m as unknown as [string, string, string];
    const point = Buffer.from(k, 'base64url');
    if (point.length !== 65 || point[0] !== 4) return void record.problems.push('k is not an uncompressed P-256 point');
    const key = createPublicKey({
      key: { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') },
      format: 'jwk',
    });
    try {
      const claims = jwt.verify(token, key, { algorithms: ['ES256'], audience: this.origin }) as jwt.JwtPayload;
      const now = Math.floor(Date.now() / 1000);
      if (typeof claims.exp !== 'number' || claims.exp > now + 24 * 3600) record.problems.push(`exp must be within 24 h: ${claims.exp}`);
      if (typeof claims.sub !== 'string' || !/^(mailto:|https:)/.test(claims.sub)) record.problems.push(`sub must be mailto: or https: ${claims.sub}`);
      record.vapid = { aud: String(claims.aud), sub: String(claims.sub), exp: Number(claims.exp), publicKey: k };
    } catch (error) {
      record.problems.push(`VAPID JWT did not verify: ${(error as Error).message}`);
    }
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

function send(res: ServerResponse, record: ReceivedWebPush, reply: { status: number; headers?: Record<string, string>; body?: unknown }): void {
  record.status = reply.status;
  const text = reply.body === undefined ? '' : typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
  res.writeHead(reply.status, reply.headers ?? {});
  res.end(text);
}
