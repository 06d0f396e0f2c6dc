import { createPublicKey, KeyObject } from 'node:crypto';
import { createSecureServer, Http2SecureServer, Http2ServerRequest, Http2ServerResponse, ServerHttp2Session } from 'node:http2';
import { AddressInfo } from 'node:net';
import * as jwt from 'jsonwebtoken';
import { ReplyScript, waitForCount } from './replies';
import { testTls } from './tls';

export interface ApnsServerOptions {
  /** The token key's public half (PEM), or the private `.p8` (its public half is taken). */
  key: string;
  keyId: string;
  teamId: string;
  topic: string;
}

/** One request as APNs saw it. */
export interface ReceivedApns {
  deviceToken: string;
  headers: Record<string, string | undefined>;
  /** The provider token's claims and header, when it verified. */
  providerToken?: { iss: string; iat: number; kid: string; raw: string };
  body?: unknown;
  problems: string[];
  status: number;
  /** Which HTTP/2 session (connection) carried it: 1, 2, ... */
  session: number;
}

/**
 * The APNs provider API on HTTP/2 over TLS: `POST /3/device/<hex token>` checks the `apns-*`
 * headers and the ES256 provider token (`kid`, `iss`, `iat` within the hour) against the key, and
 * answers 200 with an `apns-id`, or Apple's error JSON `{ reason }` (403 InvalidProviderToken /
 * ExpiredProviderToken, 400 BadTopic / MissingTopic / BadPriority...). Tokens passed to
 * `unregister(token)` get 410 Unregistered. `script` overrides replies.
 */
export class ApnsTestServer {
  readonly received: ReceivedApns[] = [];
  readonly script = new ReplyScript();
  private readonly unregistered = new Set<string>();
  private readonly publicKey: KeyObject;
  private server?: Http2SecureServer;
  private sessions = 0;
  private readonly sessionIds = new WeakMap<ServerHttp2Session, number>();
  private readonly openSessions = new Set<ServerHttp2Session>();

  private constructor(readonly options: ApnsServerOptions) {
    this.publicKey = createPublicKey(options.key);
  }

  static async start(options: ApnsServerOptions): Promise<ApnsTestServer> {
    const s = new ApnsTestServer(options);
    const tls = testTls();
    s.server = createSecureServer({ key: tls.key, cert: tls.cert }, (req, res) => s.handle(req, res));
    s.server.on('session', (session) => {
      s.sessions += 1;
      s.sessionIds.set(session, s.sessions);
      s.openSessions.add(session);
      session.on('close', () => s.openSessions.delete(session));
    });
    await new Promise<void>((resolve) => s.server?.listen(0, '127.0.0.1', resolve));
    return s;
  }

  get url(): string {
    return `https://127.0.0.1:${(this.server?.address() as AddressInfo).port}`;
  }

  get caFile(): string {
    return testTls().caFile;
  }

  get caPem(): string {
    return testTls().cert;
  }

  /** HTTP/2 connections accepted so far. */
  get sessionCount(): number {
    return this.sessions;
  }

  /** HTTP/2 connections open now. */
  get openSessionCount(): number {
    return this.openSessions.size;
  }

  unregister(deviceToken: string): void {
    this.unregistered.add(deviceToken.toLowerCase());
  }

  /** Closes every open connection (as APNs does on idle or GOAWAY); the server keeps listening. */
  dropConnections(): void {
    for (const session of this.openSessions) session.destroy();
  }

  waitForRequests(n: number, timeoutMs?: number): Promise<void> {
    return waitForCount(() => this.received.length, n, 'APNs requests', timeoutMs);
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.dropConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private handle(req: Http2ServerRequest, res: Http2ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    // Recorded on arrival; a held script only delays the answer.
    req.on('end', () => {
      const record = this.record(req);
      void this.script.gate().then(() => this.respond(req, res, Buffer.concat(chunks), record));
    });
  }

  private record(req: Http2ServerRequest): ReceivedApns {
    const match = /^\/3\/device\/([0-9a-fA-F]+)$/.exec(req.url);
    const h = (name: string): string | undefined => {
      const v = req.headers[name];
      return Array.isArray(v) ? v.join(',') : v;
    };
    const record: ReceivedApns = {
      deviceToken: match?.[1] ?? '',
      headers: Object.fromEntries(
        ['apns-topic', 'apns-push-type', 'apns-priority', 'apns-expiration', 'apns-collapse-id', 'apns-id', 'content-type'].map((n) => [n, h(n)]),
      ),
      problems: [],
      status: 0,
      session: this.sessionIds.get(req.stream.session as ServerHttp2Session) ?? 0,
    };
    this.received.push(record);
    return record;
  }

  private respond(req: Http2ServerRequest, res: Http2ServerResponse, raw: Buffer, record: ReceivedApns): void {
    // The client may have given up on this stream while the script held it.
    if (req.stream.destroyed || req.stream.closed) return void (record.status = -1);
    const scripted = this.script.next();
    if (scripted && 'drop' in scripted) {
      record.status = -1;
      req.stream.session?.destroy();
      return;
    }
    const authorization = req.headers.authorization;
    const error = this.check(req.method, /^\/3\/device\/[0-9a-fA-F]+$/.test(req.url), Array.isArray(authorization) ? authorization.join(',') : authorization, record, raw);
    const reply: { status: number; headers?: Record<string, string>; body?: unknown } = scripted ?? error ?? (this.unregistered.has(record.deviceToken.toLowerCase()) ? { status: 410, body: { reason: 'Unregistered', timestamp: Date.now() } } : { status: 200 });
    record.status = reply.status;
    res.writeHead(reply.status, { 'apns-id': record.headers['apns-id'] ?? '00000000-0000-4000-8000-000000000000', ...(reply.headers ?? {}) });
    res.end(reply.body === undefined ? '' : JSON.stringify(reply.body));
  }

  /** Apple's answer to a bad request, or undefined when the request is right. */
  private check(method: string, pathOk: boolean, authorization: string | undefined, record: ReceivedApns, raw: Buffer): { status: number; body: { reason: string } } | undefined {
    const fail = (status: number, reason: string, problem: string): { status: number; body: { reason: string } } => {
      record.problems.push(problem);
      return { status, body: { reason } };
    };
    if (method !== 'POST') return fail(405, 'MethodNotAllowed', `method ${method}`);
    if (!pathOk) return fail(404, 'BadPath', 'path is not /3/device/<hex token>');
    const m = /^bearer (.+)$/.exec(authorization ?? '');
    if (!m?.[1]) return fail(403, 'MissingProviderToken', `authorization is ${authorization}`);
    try {
      const decoded = jwt.verify(m[1], this.publicKey, { algorithms: ['ES256'], complete: true });
      const claims = decoded.payload as jwt.JwtPayload;
      if (decoded.header.kid !== this.options.keyId) return fail(403, 'InvalidProviderToken', `kid ${decoded.header.kid}`);
      if (claims.iss !== this.options.teamId) return fail(403, 'InvalidProviderToken', `iss ${claims.iss}`);
      if (typeof claims.iat !== 'number') return fail(403, 'InvalidProviderToken', 'no iat');
      if (claims.iat < Date.now() / 1000 - 3600) return fail(403, 'ExpiredProviderToken', `iat ${claims.iat} is over an hour old`);
      record.providerToken = { iss: claims.iss, iat: claims.iat, kid: decoded.header.kid, raw: m[1] };
    } catch (error) {
      return fail(403, 'InvalidProviderToken', `provider token did not verify: ${(error as Error).message}`);
    }
    const hd = record.headers;
    if (!hd['apns-topic']) return fail(400, 'MissingTopic', 'no apns-topic');
    if (hd['apns-topic'] !== this.options.topic) return fail(400, 'BadTopic', `apns-topic ${hd['apns-topic']}`);
    if (!['alert', 'background'].includes(hd['apns-push-type'] ?? '')) return fail(400, 'InvalidPushType', `apns-push-type ${hd['apns-push-type']}`);
    if (!['5', '10', '1'].includes(hd['apns-priority'] ?? '10')) return fail(400, 'BadPriority', `apns-priority ${hd['apns-priority']}`);
    if (hd['apns-push-type'] === 'background' && hd['apns-priority'] !== '5') return fail(400, 'BadPriority', 'background pushes must have priority 5');
    if (hd['apns-expiration'] !== undefined && !/^\d+$/.test(hd['apns-expiration'])) return fail(400, 'BadExpirationDate', `apns-expiration ${hd['apns-expiration']}`);
    if (hd['apns-collapse-id'] !== undefined && Buffer.byteLength(hd['apns-collapse-id']) > 64) return fail(400, 'BadCollapseId', 'apns-collapse-id over 64 bytes');
    if (hd['apns-id'] !== undefined && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(hd['apns-id'])) return fail(400, 'BadMessageId', `apns-id ${hd['apns-id']}`);
    if (raw.length > 4096) return fail(413, 'PayloadTooLarge', `payload ${raw.length} bytes`);
    try {
      record.body = JSON.parse(raw.toString('utf8'));
    } catch {
      return fail(400, 'PayloadEmpty', 'body is not JSON');
    }
    const aps = (record.body as { aps?: unknown }).aps;
    if (typeof aps !== 'object' || aps === null) return fail(400, 'PayloadEmpty', 'no aps dictionary');
    return undefined;
  }
}
