import { ArgumentsHost, BadRequestException, ExecutionContext, ForbiddenException, UnsupportedMediaTypeException } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { NextFunction, Request, Response } from 'express';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { ApiAuthGuard, ApiRequest } from '../auth/api-auth.guard';
import { RateLimiter } from '../auth/rate-limiter';
import { Clock } from '../common/clock';
import { HttpExceptionFilter } from '../common/http-exception.filter';
import { sendJson } from '../common/send-json';
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

/** Express's request and response prototypes (the Express application's `request` and `response`). */
export interface ExpressPrototypes {
  request: object;
  response: object;
}

/**
 * Gives a request the front path took Express's request and response, as Express's own init does
 * (`req.ip`, `res.status().json()`, what the exception filter and the JSON parser use), once.
 * Only a request that needs them gets them: setting an object's prototype gives it a map of its
 * own, and Node's HTTP code, meeting those maps beside its usual ones, then ran its property
 * loads megamorphic (`perf` on the push path: about a sixth of a 202's CPU in IC misses and map
 * migrations on req and res, docs/performance.md).
 */
export function adoptExpress(req: Request, res: Response, express: ExpressPrototypes): void {
  if (Object.getPrototypeOf(res) === express.response) return;
  Object.setPrototypeOf(req, express.request);
  Object.setPrototypeOf(res, express.response);
  (req as { res?: Response }).res = res;
  (res as { req?: Request }).req = req;
  req.originalUrl ??= req.url;
  res.locals ??= Object.create(null) as Record<string, unknown>;
}

/**
 * The route's steps (guard, body check, schema, publish, answer), every error answered by the
 * app's exception filter; one handler serves both fastPublishRoute and the front path, whose
 * requests get Express's prototypes (`express`) only when an error is to be answered.
 */
export function publishHandler(app: Providers, config: AppConfig, clock: Clock, express: ExpressPrototypes): PublishHandler {
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
    // Without res.json's ETag, 1 % of a POST's CPU.
    sendJson(res, 202, accepted);
  };
  return (req, res) => {
    route(req, res).catch((err: unknown) => fail(req, res, err, express));
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

/** Answers an error as the app's exception filter does, with Express's response methods. */
function fail(req: Request, res: Response, err: unknown, express: ExpressPrototypes): void {
  adoptExpress(req, res, express);
  filter.catch(err, { switchToHttp: () => ({ getResponse: () => res }) } as unknown as ArgumentsHost);
}

export type Middleware = (req: Request, res: Response, next: (err?: unknown) => void) => void;

/** What the front path runs besides the route: the app's own pieces, in the order Express has them. */
export interface FrontPublishParts {
  /** The Express application's request and response prototypes (adoptExpress). */
  express: ExpressPrototypes;
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
 * passes the same middleware (request log, security headers, shedding) and the same route
 * (publishHandler) as Node's own request and response, none of which needs Express's methods on
 * the way to a 202; an error, or a body for Express's parser, first gets Express's request and
 * response prototypes (adoptExpress), so its answer is Express's. Its body is read
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
    let i = 0;
    const next = (err?: unknown): void => {
      if (err !== undefined) return fail(req, res, err, parts.express);
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
    adoptExpress(req, res, parts.express);
    const replay = Object.assign(Readable.from([bytes], { objectMode: false }), {
      headers: req.headers,
      method: req.method,
      url: req.url,
      socket: req.socket,
      complete: false,
    }) as unknown as Request;
    parts.jsonParser(replay, res, (err) => {
      // As Nest maps what the parser passes on (RoutesResolver.mapExternalException): malformed JSON is a 400 with JSON.parse's message.
      if (err instanceof SyntaxError) return fail(req, res, new BadRequestException(err.message), parts.express);
      if (err !== undefined) return fail(req, res, err, parts.express);
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
