import { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { ExpressAdapter } from '@nestjs/platform-express/adapters/express-adapter.js';
import { AppModule } from './app.module';
import { API_KEY_SCHEME } from './auth/api-auth.decorator';
import { Clock, SystemClock } from './common/clock';
import { HttpExceptionFilter } from './common/http-exception.filter';
import { answerClientErrors, lastResortErrorHandler } from './common/last-resort';
import { sendUnavailable } from './common/unavailable';
import { AppConfig } from './config/app-config';
import { DeviceChannel } from './channel/device-channel';
import { openApiDocs } from './docs/openapi-route';
import { GatewayIoAdapter } from './gateway/gateway-io.adapter';
import { LoadMonitor } from './load/load-monitor';
import { RestAdmission } from './load/rest-admission';
import { AppLogger, createPino } from './logging/app-logger';
import { requestLog } from './logging/request-log';
import { trustFn } from './http/client-address';
import { fastPublishRoute, FrontPublishParts, installFrontPublish, Middleware, publishHandler, staticHeaders } from './http/fast-publish';
import { applyServerLimits } from './http/http-server';
import { opsAuth } from './http/ops-auth';
import { restCors } from './http/origins';
import { securityHeaders } from './http/security-headers';
import { MetricsService } from './metrics/metrics.service';
import { RedisConnection } from './redis/redis-connection';

/** REST bodies may hold up to MAX_TARGETS ids besides the payload; this is the raw-body ceiling. */
const BODY_LIMIT_BYTES = 256 * 1024;

/** Builds the whole application (used by main.ts and by the e2e tests) without listening. */
export async function createApp(config: AppConfig, clock: Clock = new SystemClock()): Promise<INestApplication> {
  const logger = createPino(config);
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config, clock), new ExpressAdapter(), {
    logger: new AppLogger(logger),
    bodyParser: false,
  });
  applyServerLimits(app.getHttpServer(), config.http, () => app.get(MetricsService).httpConnectionsDropped.inc());
  // The same rule for req.ip (REST) as for socket handshakes; off unless TRUST_PROXY says otherwise.
  const trust = trustFn(config.http.trustProxy);
  app.set('trust proxy', trust);
  app.disable('x-powered-by');
  const logRequests = requestLog(logger, trust);
  if (logRequests) app.use(logRequests);
  const headers = securityHeaders();
  app.use(headers);
  app.enableCors(restCors(config.http.corsOrigins));
  // While draining, new requests are turned away (in-flight ones finish) and the connection is
  // closed, so a load balancer retries them on another instance.
  const channel = app.get(DeviceChannel);
  app.use((req: { url: string }, res: import('express').Response, next: () => void) => {
    if (!channel.isDraining || req.url === '/health/live') return next();
    sendUnavailable(res, 'instance is shutting down', { Connection: 'close' });
  });
  // Shedding: when this process falls behind on what devices send (LoadMonitor), backend requests
  // are turned away before their bodies are even parsed, so heartbeats keep their CPU and Redis.
  // And while /v1 requests stand in a queue (RestAdmission), new ones are turned away rather than
  // made to wait for seconds.
  const load = app.get(LoadMonitor);
  const admission = app.get(RestAdmission);
  const metrics = app.get(MetricsService);
  const shedding = (_req: unknown, res: import('express').Response, next: () => void) => {
    const arrived = performance.now();
    const queued = load.overloaded ? undefined : admission.admit(arrived);
    if (!load.overloaded && queued === undefined) {
      // 'close' follows 'finish' on an answered request and also ends one whose client went away.
      res.once('close', () => {
        const now = performance.now();
        admission.done(now, res.writableFinished ? now - arrived : undefined);
      });
      return next();
    }
    metrics.restShed.inc();
    const why = load.overloaded ? `${load.delay} ms behind` : `requests took at least ${queued} ms`;
    sendUnavailable(res, `instance overloaded (${why}), retry later`);
  };
  app.use('/v1', shedding);
  // Before Swagger's routes, which are registered on the HTTP adapter where Nest guards do not run.
  if (config.http.opsToken) app.use(opsAuth(config.http.opsToken));
  app.useBodyParser('json', { limit: BODY_LIMIT_BYTES });
  app.useGlobalFilters(new HttpExceptionFilter());
  // The hot route in front of Nest's router: same guard, pipe, service and filter (src/http/fast-publish.ts).
  const express = app.getHttpAdapter().getInstance() as import('express').Express & { router?: { stack?: { handle?: { name?: string } }[] } };
  const publish = publishHandler(app, config, clock, express);
  app.use(fastPublishRoute(publish));
  await app.get(RedisConnection).connect();
  app.useWebSocketAdapter(new GatewayIoAdapter(app));

  // Swagger UI and the OpenAPI document: the library loads, and the document is built, on the
  // first request for them, not at start (src/docs/openapi-route.ts). Building it allocates several
  // megabytes of short-lived objects, and the young generation that grew to hold them stayed grown
  // (resident) in a process that may never serve the page.
  app.use(
    openApiDocs(({ SwaggerModule, DocumentBuilder }) =>
      SwaggerModule.createDocument(
        app,
        new DocumentBuilder()
          .setTitle('push-gateway')
          .setDescription(
            'REST API for backend services. The device socket protocol: docs/protocol.md (wire level) and /asyncapi.json (payloads).',
          )
          .setVersion('1')
          // An opaque API key, not a JWT: addBearerAuth would add `bearerFormat: JWT` by default.
          .addSecurity(API_KEY_SCHEME, { type: 'http', scheme: 'bearer', description: 'An API key: one of API_KEYS, sent as `Authorization: Bearer <key>`' })
          .build(),
      ),
    ),
  );

  // Nest mounts its routes and its exception layer at init; what is added after them catches what
  // escapes that layer, which Express would answer with an HTML page holding the stack trace.
  await app.init();
  app.use(lastResortErrorHandler());
  answerClientErrors(app.getHttpServer());
  // The hot route in front of Express itself, for the plain requests that are nearly all of them
  // (src/http/fast-publish.ts): the same middleware, parser and route, without Express's routing.
  const jsonParser = express.router?.stack?.find((layer) => layer.handle?.name === 'jsonParser')?.handle;
  if (typeof jsonParser === 'function') {
    installFrontPublish(app.getHttpServer(), publish, {
      express,
      // helmet's headers do not depend on the request: taken once, set from a list.
      before: [...(logRequests ? [logRequests] : []), staticHeaders(headers as Middleware), shedding] as Middleware[],
      jsonParser: jsonParser as FrontPublishParts['jsonParser'],
      draining: () => channel.isDraining,
      bodyLimit: BODY_LIMIT_BYTES,
    });
  } else {
    logger.warn('Express JSON body parser not found: POST /v1/notifications is answered through Express only');
  }
  return app;
}
