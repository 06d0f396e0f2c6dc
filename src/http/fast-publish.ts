import { ArgumentsHost, BadRequestException, ExecutionContext, ForbiddenException, UnsupportedMediaTypeException } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { NextFunction, Request, Response } from 'express';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { ApiAuthGuard, ApiRequest } from '../auth/api-auth.guard';
import { RateLimiter } from '../auth/rate-limiter';
import { Clock } from '../common/clock';
import { HttpExceptionFilter } from '../common/http-exception.filter';
import { hasBody } from '../common/json-body.decorator';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { CreateNotificationRequest } from '../notifications/create-notification.dto';
import { CreateNotificationPipe } from '../notifications/create-notification.pipe';
import { NotificationsController } from '../notifications/notifications.controller';
import { NotificationsService } from '../notifications/notifications.service';

/** What the pieces below need from the application (Nest's `app.get`). */
interface Providers {
  get<T>(type: abstract new (...args: never[]) => T): T;
}

/**
 * `POST /v1/notifications`, the hot route, answered in front of Nest's router: the same steps
 * with the same objects, without the route pipeline around them (execution context, guard and
 * pipe consumers, parameter factories, the exception zone), which took about 10-15 % of the CPU
 * of a POST (bench/post-ab.mjs, docs/performance.md). The order is Nest's: the API key guard
 * (401, 429, the per-key limit), then the JSON body (415), the body's schema (400), the publish
 * (202, or its errors), every error answered by the app's exception filter. It runs after the
 * middleware (request log, security headers, CORS, draining, shedding, body parser), as the route
 * did. A request it does not recognise exactly (another path spelling, a trailing slash) goes on
 * to Nest's router, which answers it as before.
 */
export function fastPublishRoute(publish: PublishHandler): (req: Request, res: Response, next: NextFunction) => void {
  return (req, res, next) => {
    if (req.method !== 'POST' || req.path !== '/v1/notifications') return next();
    publish(req, res);
  };
}

/** Answers one POST /v1/notifications whose body has been read (req.body). */
export type PublishHandler = (req: Request, res: Response) => void;

/**
 * The route's steps (guard, body check, schema, publish, answer), every error answered by the
 * app's exception filter; one handler serves both fastPublishRoute and the front path.
 */
export function publishHandler(app: Providers, config: AppConfig, clock: Clock): PublishHandler {
  const guard = new ApiAuthGuard(config, app.get(RateLimiter), clock, app.get(MetricsService), app.get(Reflector));
  const pipe = new CreateNotificationPipe();
  const notifications = app.get(NotificationsService);
  const valid = (body: unknown): CreateNotificationRequest | undefined => {
    try {
      return pipe.transform(body);
    } catch {
      return undefined;
    }
  };
  const route = async (req: ApiRequest, res: Response): Promise<void> => {
    const body: unknown = req.body;
    // A right API key and a valid body: the key's rate limit can run in the publish's own Redis
    // call (NotificationsService.publish decides). Anything else takes the route's steps in
    // Nest's order, so a request over its limit gets 429 whatever its body.
    const admission = body === undefined ? undefined : guard.foldable(req, res);
    let request = admission ? valid(body) : undefined;
    if (!request) {
      if (!(await guard.canActivate(contextOf(req, res)))) throw new ForbiddenException('Forbidden resource');
      if (body === undefined && hasBody(req)) throw new UnsupportedMediaTypeException('Content-Type must be application/json');
      request = pipe.transform(body);
    }
    // As @Headers('Idempotency-Key') reads it (Node joins a repeated header into one string).
    const idempotencyKey = req.headers['idempotency-key'] as string | undefined;
    const accepted = await notifications.publish(request, { apiKeyId: req.apiKeyId ?? '', idempotencyKey }, admission);
    // What res.json would send, without its ETag (a hash of the body, for caching an answer to a
    // POST that is never cached): 1 % of a POST's CPU.
    const json = JSON.stringify(accepted);
    res.statusCode = 202;
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(json));
    res.end(json);
  };
  return (req, res) => {
    route(req, res).catch((err: unknown) => fail(res, err));
  };
}

/**
 * A middleware that only sets fixed headers, replaced by one that sets the same list: it is run
 * once on a recording response and its headers are kept (helmet's, with this configuration, do
 * not depend on the request: no CSP nonces). test/fast-publish.e2e-spec.ts compares every header
 * of both paths' answers.
 */
export function staticHeaders(middleware: Middleware): Middleware {
  const set: [string, string | number | readonly string[]][] = [];
  const removed: string[] = [];
  const recorder = {
    setHeader: (name: string, value: string | number | readonly string[]) => set.push([name, value]),
    removeHeader: (name: string) => removed.push(name),
    getHeader: () => undefined,
  };
  let passed = false;
  middleware({ headers: {}, method: 'POST', url: '/v1/notifications', secure: false } as unknown as Request, recorder as unknown as Response, () => (passed = true));
  if (!passed) return middleware;
  return (_req, res, next) => {
    for (const name of removed) res.removeHeader(name);
    for (const [name, value] of set) res.setHeader(name, value);
    next();
  };
}

/** What the guard reads: the request and response, and the route's metadata (OpsTokenReads). */
function contextOf(req: Request, res: Response): ExecutionContext {
  const http = { getRequest: () => req, getResponse: () => res };
  return {
    switchToHttp: () => http,
    getHandler: () => NotificationsController.prototype.create,
    getClass: () => NotificationsController,
    getType: () => 'http',
  } as unknown as ExecutionContext;
}

const filter = new HttpExceptionFilter();

/** Answers an error as the app's exception filter does. */
function fail(res: Response, err: unknown): void {
  filter.catch(err, { switchToHttp: () => ({ getResponse: () => res }) } as unknown as ArgumentsHost);
}

export type Middleware = (req: Request, res: Response, next: (err?: unknown) => void) => void;

/** What the front path runs besides the route: the app's own pieces, in the order Express has them. */
export interface FrontPublishParts {
  /** The Express application (its request and response prototypes, `trust proxy`). */
  express: { request: object; response: object };
  /** The middleware a /v1 request passes before its body is read: request log, security headers (staticHeaders), shedding. */
  before: Middleware[];
  /** The JSON body parser Express runs (useBodyParser), for the bodies the front path does not parse itself. */
  jsonParser: Middleware;
  /** While true, requests go to Express (which turns them away). */
  draining: () => boolean;
  bodyLimit: number;
}

const JSON_TYPE = /^application\/json(?:;\s*charset=utf-8)?$/i;

/**
 * Whether the front path answers this request: `POST /v1/notifications` spelled exactly, a JSON
 * body of a declared length within the limit, not compressed, not chunked, and not from a browser
 * (no Origin: CORS adds nothing to such a request). Everything else goes to Express as before.
 */
export function frontPublishTakes(req: IncomingMessage, bodyLimit: number): boolean {
  if (req.method !== 'POST' || req.url !== '/v1/notifications') return false;
  const h = req.headers;
  if (h.origin !== undefined || h['transfer-encoding'] !== undefined || h['content-encoding'] !== undefined) return false;
  if (h['content-type'] === undefined || !JSON_TYPE.test(h['content-type'])) return false;
  const length = Number(h['content-length']);
  return Number.isInteger(length) && length > 0 && length <= bodyLimit;
}

/**
 * `POST /v1/notifications` answered in front of Express, for the requests frontPublishTakes:
 * Express's routing and its body parser stack (content-type parsing, type checks, the raw-body
 * reader, the charset decoder, its debug hooks), then Express's response helpers for the 202 took
 * about a fifth of the CPU of a POST (bench push --cpu-prof, docs/performance.md). The request
 * gets Express's request and response prototypes (as Express's own init does: `req.ip`,
 * `res.status().json()` and the exception filter work unchanged), passes the same middleware
 * (request log, security headers, shedding) and the same route (publishHandler). Its body is read
 * here; one that starts with `{` and parses is the body. Anything else (a BOM, leading space, an
 * array, malformed JSON) goes through Express's own JSON parser, replayed from the bytes read, so
 * its answer is the parser's. Installed as the HTTP server's request listener, in front of the
 * previous ones (engine.io's, which hands non-Socket.IO requests to Express), to which every other
 * request goes.
 */
export function installFrontPublish(server: Server, publish: PublishHandler, parts: FrontPublishParts): void {
  const previous = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  const passOn = (req: IncomingMessage, res: ServerResponse) => {
    for (const listener of previous) listener.call(server, req, res);
  };
  const front = (req: Request, res: Response) => {
    Object.setPrototypeOf(req, parts.express.request);
    Object.setPrototypeOf(res, parts.express.response);
    (req as { res?: Response }).res = res;
    (res as { req?: Request }).req = req;
    req.originalUrl = req.url;
    res.locals = Object.create(null) as Record<string, unknown>;
    let i = 0;
    const next = (err?: unknown): void => {
      if (err !== undefined) return fail(res, err);
      const step = parts.before[i++];
      if (step) return step(req, res, next);
      readBody(req, res);
    };
    next();
  };
  const readBody = (req: Request, res: Response) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      const text = bytes.toString('utf8');
      if (text.charCodeAt(0) === 0x7b /* { */) {
        try {
          req.body = JSON.parse(text) as unknown;
          return publish(req, res);
        } catch {
          // answered by the parser below, as Express would
        }
      }
      replayParse(req, res, bytes);
    });
  };
  const replayParse = (req: Request, res: Response, bytes: Buffer) => {
    const replay = Object.assign(Readable.from([bytes], { objectMode: false }), {
      headers: req.headers,
      method: req.method,
      url: req.url,
      socket: req.socket,
      complete: false,
    }) as unknown as Request;
    parts.jsonParser(replay, res, (err) => {
      // As Nest maps what the parser passes on (RoutesResolver.mapExternalException): malformed JSON is a 400 with JSON.parse's message.
      if (err instanceof SyntaxError) return fail(res, new BadRequestException(err.message));
      if (err !== undefined) return fail(res, err);
      req.body = (replay as { body?: unknown }).body;
      publish(req, res);
    });
  };
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (!frontPublishTakes(req, parts.bodyLimit) || parts.draining()) return passOn(req, res);
    front(req as Request, res as unknown as Response);
  });
}
