import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { EventEnvelope } from '../../src/events/event.types';

/** What the receiver answers one request with: a status (and headers), or nothing at all (`hang`). */
export type Answer = { status: number; headers?: Record<string, string> } | 'hang';

export interface Received {
  event: EventEnvelope;
  headers: Record<string, string>;
  at: number;
}

/**
 * A real HTTP receiver on loopback that verifies every request with the Standard Webhooks
 * library (a request that fails verification is recorded in `unverified` and answered 400) and
 * answers as `answer` says. `accepted` holds what it answered 2xx, in arrival order.
 */
export class WebhookReceiver {
  readonly requests: Received[] = [];
  readonly accepted: Received[] = [];
  readonly unverified: string[] = [];
  answer: (event: EventEnvelope, attempt: number) => Answer = () => ({ status: 204 });
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  private readonly attempts = new Map<string, number>();
  port = 0;

  constructor(private readonly secret: string) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks`;
  }

  /** Listens (on `port` when given: the same address again after a stop). */
  async start(port = this.port): Promise<this> {
    const server = createServer((req, res) => void this.handle(req, res));
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  /** Stops listening and cuts every connection: the port refuses connections until `start` again. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Accepted events' ids, first arrival of each, in arrival order. */
  acceptedIds(filter: (e: EventEnvelope) => boolean = () => true): string[] {
    return [...new Set(this.accepted.filter((r) => filter(r.event)).map((r) => r.event.id))];
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
    let event: EventEnvelope;
    try {
      event = new Webhook(this.secret).verify(raw, headers) as EventEnvelope;
    } catch (err) {
      this.unverified.push(`${(err as Error).message}: ${raw}`);
      res.writeHead(400).end();
      return;
    }
    const received = { event, headers, at: Date.now() };
    this.requests.push(received);
    const attempt = (this.attempts.get(event.id) ?? 0) + 1;
    this.attempts.set(event.id, attempt);
    const answer = this.answer(event, attempt);
    if (answer === 'hang') return; // the gateway's timeout ends it
    if (answer.status >= 200 && answer.status < 300) this.accepted.push(received);
    res.writeHead(answer.status, answer.headers).end();
  }
}
