import { ArgumentsHost, ExecutionContext, ForbiddenException, UnsupportedMediaTypeException } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { NextFunction, Request, Response } from 'express';
import { ApiAuthGuard, ApiRequest } from '../auth/api-auth.guard';
import { RateLimiter } from '../auth/rate-limiter';
import { Clock } from '../common/clock';
import { HttpExceptionFilter } from '../common/http-exception.filter';
import { hasBody } from '../common/json-body.decorator';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
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
export function fastPublishRoute(app: Providers, config: AppConfig, clock: Clock): (req: Request, res: Response, next: NextFunction) => void {
  const guard = new ApiAuthGuard(config, app.get(RateLimiter), clock, app.get(MetricsService), app.get(Reflector));
  const pipe = new CreateNotificationPipe();
  const notifications = app.get(NotificationsService);
  const filter = new HttpExceptionFilter();
  const route = async (req: ApiRequest, res: Response): Promise<void> => {
    const http = { getRequest: () => req, getResponse: () => res };
    // What the guard reads: the request and response, and the route's metadata (OpsTokenReads).
    const context = {
      switchToHttp: () => http,
      getHandler: () => NotificationsController.prototype.create,
      getClass: () => NotificationsController,
      getType: () => 'http',
    } as unknown as ExecutionContext;
    if (!(await guard.canActivate(context))) throw new ForbiddenException('Forbidden resource');
    const body: unknown = req.body;
    if (body === undefined && hasBody(req)) throw new UnsupportedMediaTypeException('Content-Type must be application/json');
    const request = pipe.transform(body);
    // As @Headers('Idempotency-Key') reads it (Node joins a repeated header into one string).
    const idempotencyKey = req.headers['idempotency-key'] as string | undefined;
    const accepted = await notifications.publish(request, { apiKeyId: req.apiKeyId ?? '', idempotencyKey });
    res.status(202).json(accepted);
  };
  return (req, res, next) => {
    if (req.method !== 'POST' || req.path !== '/v1/notifications') return next();
    route(req, res).catch((err: unknown) => filter.catch(err, { switchToHttp: () => ({ getResponse: () => res }) } as unknown as ArgumentsHost));
  };
}
