import { generateKeyPairSync, KeyObject, randomBytes } from 'node:crypto';
import { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, Server } from 'node:https';
import { AddressInfo } from 'node:net';
import * as jwt from 'jsonwebtoken';
import { ReplyScript, ScriptedReply, waitForCount } from './replies';
import { testTls } from './tls';

const SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';

/** A token request as the OAuth endpoint saw it. */
export interface ReceivedTokenRequest {
  grantType?: string;
  claims?: jwt.JwtPayload;
  kid?: string;
  problems: string[];
  status: number;
  issued?: string;
}

/** A `messages:send` request. */
export interface ReceivedFcm {
  projectId: string;
  bearer?: string;
  /** The `message` object of the JSON body. */
  message?: Record<string, unknown>;
  problems: string[];
  status: number;
}

export interface FcmServerOptions {
  projectId?: string;
  /** `expires_in` of issued access tokens (Google: 3599). */
  tokenLifetimeSeconds?: number;
}

/**
 * FCM HTTP v1 and Google's OAuth token endpoint on one loopback HTTPS server:
 * - `POST /token` (the service account's `token_uri`): the JWT bearer grant; the RS256 assertion is
 *   verified against the service account's public key (`kid`, `iss`, `aud` = token_uri, `scope`,
 *   at most an hour), and an access token is issued;
 * - `POST /v1/projects/<id>/messages:send`: the bearer must be an issued, unexpired token; the JSON
 *   is checked (a `token`, string-only `data`, `android.ttl` like "30s"...). Tokens passed to
 *   `unregister(token)` get 404 `UNREGISTERED`, as FCM answers for an uninstalled app.
 * `tokenScript` and `script` override the two endpoints' replies.
 */
export class FcmTestServer {
  readonly tokenRequests: ReceivedTokenRequest[] = [];
  readonly received: ReceivedFcm[] = [];
  readonly script = new ReplyScript();
  readonly tokenScript = new ReplyScript();
  readonly projectId: string;
  private readonly tokens = new Map<string, number>();
  private readonly unregistered = new Set<string>();
  private readonly publicKey: KeyObject;
  private readonly privateKeyPem: string;
  private readonly keyId = randomBytes(20).toString('hex');
  private server?: Server;

  private constructor(private readonly options: FcmServerOptions) {
    this.projectId = options.projectId ?? 'push-gateway-test';
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.publicKey = publicKey;
    this.privateKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  }

  static async start(options: FcmServerOptions = {}): Promise<FcmTestServer> {
    const s = new FcmTestServer(options);
    const tls = testTls();
    s.server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => s.handle(req, res));
    await new Promise<void>((resolve) => s.server?.listen(0, '127.0.0.1', resolve));
    return s;
  }

  /** FCM_URL for the gateway. */
  get url(): string {
    return `https://127.0.0.1:${(this.server?.address() as AddressInfo).port}`;
  }

  get tokenUri(): string {
    return `${this.url}/token`;
  }

  get caFile(): string {
    return testTls().caFile;
  }

  get caPem(): string {
    return testTls().cert;
  }

  /** A service account JSON (as FCM_SERVICE_ACCOUNT takes it) whose key and token_uri belong to this server. */
  serviceAccount(): Record<string, string> {
    return {
      type: 'service_account',
      project_id: this.projectId,
      private_key_id: this.keyId,
      private_key: this.privateKeyPem,
      client_email: `push-gateway@${this.projectId}.iam.gserviceaccount.com`,
      client_id: '100000000000000000000',
      token_uri: this.tokenUri,
    };
  }

  unregister(deviceToken: string): void {
    this.unregistered.add(deviceToken);
  }

  /** Every access token issued so far stops working (401), as after a key rotation. */
  revokeTokens(): void {
    this.tokens.clear();
  }

  waitForRequests(n: number, timeoutMs?: number): Promise<void> {
    return waitForCount(() => this.received.length, n, 'FCM sends', timeoutMs);
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    // Recorded and checked on arrival; a held script only delays the answer.
    req.on('end', () => {
      const handled = this.route(req, Buffer.concat(chunks).toString('utf8'));
      void this.script.gate().then(() => {
        const scripted = handled.script?.next();
        if (!scripted) handled.onDefault?.();
        handled.record.status = reply(res, scripted ?? handled.reply, req);
      });
    });
  }

  private route(req: IncomingMessage, body: string): Handled {
    if (req.method === 'POST' && req.url === '/token') return this.token(body);
    const m = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(req.url ?? '');
    if (req.method === 'POST' && m) return this.send(req, decodeURIComponent(m[1] ?? ''), body);
    return { record: { status: 0 }, reply: googleError(404, 'NOT_FOUND', `no route ${req.method} ${req.url}`) };
  }

  private token(body: string): Handled {
    const record: ReceivedTokenRequest = { problems: [], status: 0 };
    this.tokenRequests.push(record);
    const form = new URLSearchParams(body);
    record.grantType = form.get('grant_type') ?? undefined;
    if (record.grantType !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') record.problems.push(`grant_type ${record.grantType}`);
    try {
      const decoded = jwt.verify(form.get('assertion') ?? '', this.publicKey, { algorithms: ['RS256'], audience: this.tokenUri, complete: true });
      const claims = decoded.payload as jwt.JwtPayload;
      record.claims = claims;
      record.kid = decoded.header.kid;
      // Google tries the account's keys when the assertion names none; a wrong one is refused.
      if (decoded.header.kid !== undefined && decoded.header.kid !== this.keyId) record.problems.push(`kid ${decoded.header.kid}`);
      if (claims.iss !== this.serviceAccount().client_email) record.problems.push(`iss ${claims.iss}`);
      if (!String(claims.scope ?? '').split(' ').includes(SCOPE)) record.problems.push(`scope ${claims.scope}`);
      if (typeof claims.iat !== 'number' || typeof claims.exp !== 'number' || claims.exp - claims.iat > 3600) record.problems.push('iat/exp must span at most an hour');
    } catch (error) {
      record.problems.push(`assertion did not verify: ${(error as Error).message}`);
    }
    if (record.problems.length) {
      return { record, script: this.tokenScript, reply: { status: 400, body: { error: 'invalid_grant', error_description: record.problems.join('; ') } } };
    }
    const lifetime = this.options.tokenLifetimeSeconds ?? 3599;
    const token = `ya29.test-${randomBytes(12).toString('base64url')}`;
    return {
      record,
      script: this.tokenScript,
      reply: { status: 200, body: { access_token: token, expires_in: lifetime, token_type: 'Bearer' } },
      // Issued only when this answer is the one sent (a scripted reply replaces it).
      onDefault: () => {
        this.tokens.set(token, Date.now() + lifetime * 1000);
        record.issued = token;
      },
    };
  }

  private send(req: IncomingMessage, projectId: string, body: string): Handled {
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const record: ReceivedFcm = { projectId, bearer, problems: [], status: 0 };
    this.received.push(record);
    const handled = (r: ScriptedReply): Handled => ({ record, script: this.script, reply: r });
    const expiry = bearer ? this.tokens.get(bearer) : undefined;
    if (expiry === undefined || expiry < Date.now()) {
      record.problems.push('bearer token unknown or expired');
      return handled(googleError(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials.'));
    }
    if (projectId !== this.projectId) record.problems.push(`project ${projectId}`);
    try {
      const parsed = JSON.parse(body) as { message?: Record<string, unknown> };
      record.message = parsed.message;
      record.problems.push(...checkMessage(parsed.message));
    } catch {
      record.problems.push('body is not JSON');
    }
    if (record.problems.length) return handled(googleError(400, 'INVALID_ARGUMENT', record.problems.join('; '), 'INVALID_ARGUMENT'));
    if (this.unregistered.has(String(record.message?.token))) return handled(googleError(404, 'NOT_FOUND', 'Requested entity was not found.', 'UNREGISTERED'));
    return handled({ status: 200, body: { name: `projects/${projectId}/messages/0:${Date.now()}%${randomBytes(4).toString('hex')}` } });
  }
}

/** A request looked at on arrival: its record, the answer a right server gives, and which script may replace it. */
interface Handled {
  record: { status: number };
  reply: ScriptedReply;
  script?: ReplyScript;
  onDefault?: () => void;
}

/** FCM v1's rules for a `Message` to one device token, as far as the gateway uses them. */
function checkMessage(message: Record<string, unknown> | undefined): string[] {
  if (!message) return ['no message'];
  const problems: string[] = [];
  if (typeof message.token !== 'string' || !message.token) problems.push('message.token must be a string');
  const data = message.data as Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(data ?? {})) {
    if (typeof v !== 'string') problems.push(`data.${k} must be a string`);
    if (k === 'from' || k === 'notification' || k === 'message_type' || /^(google|gcm)/.test(k)) problems.push(`data.${k} is a reserved key`);
  }
  const n = message.notification as Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(n ?? {})) if (!['title', 'body', 'image'].includes(k) || typeof v !== 'string') problems.push(`notification.${k}`);
  const android = message.android as Record<string, unknown> | undefined;
  if (android) {
    const { ttl, priority } = android;
    if (ttl !== undefined && (typeof ttl !== 'string' || !/^\d+(\.\d{1,9})?s$/.test(ttl))) problems.push(`android.ttl ${JSON.stringify(ttl)}`);
    if (priority !== undefined && (typeof priority !== 'string' || !['HIGH', 'NORMAL'].includes(priority))) problems.push(`android.priority ${JSON.stringify(priority)}`);
    if (android.collapse_key !== undefined && typeof android.collapse_key !== 'string') problems.push('android.collapse_key must be a string');
  }
  for (const part of ['apns', 'webpush'] as const) {
    const headers = (message[part] as { headers?: Record<string, unknown> } | undefined)?.headers;
    for (const [k, v] of Object.entries(headers ?? {})) if (typeof v !== 'string') problems.push(`${part}.headers.${k} must be a string`);
  }
  return problems;
}

function googleError(code: number, status: string, message: string, errorCode?: string): ScriptedReply {
  const details = errorCode ? [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode }] : [];
  return { status: code, body: { error: { code, message, status, details } } };
}

/** Sends a reply (a dropped one destroys the connection) and returns the status recorded for it. */
function reply(res: ServerResponse, r: ScriptedReply, req?: IncomingMessage): number {
  if ('drop' in r) {
    req?.socket.destroy();
    res.socket?.destroy();
    return -1;
  }
  res.writeHead(r.status, { 'content-type': 'application/json', ...(r.headers ?? {}) });
  res.end(r.body === undefined ? '' : typeof r.body === 'string' ? r.body : JSON.stringify(r.body));
  return r.status;
}
