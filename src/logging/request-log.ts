import type { NextFunction, Request, Response } from 'express';
import type { Logger as Pino } from 'pino';
import { clientAddress, TrustFn } from '../http/client-address';

/** Probes and scrapes: every few seconds from every orchestrator and Prometheus, never interesting. */
const QUIET = /^\/(health|metrics)/;

/**
 * One `request completed` line per REST request at info level (method, url, status, time), as
 * pino-http wrote it, minus what cost the most per request: a child logger with its own
 * serializers, and the headers (authorization had to be redacted from each). Below info (the
 * production setting, LOG_LEVEL=warn) it is not installed at all: returns undefined. The client's
 * address is the one the rate limits count (TRUST_PROXY's rule, as Express's req.ip applies it),
 * read from Node's request: POST /v1/notifications is answered without Express's request methods
 * (src/http/fast-publish.ts).
 */
export function requestLog(logger: Pino, trust: TrustFn): ((req: Request, res: Response, next: NextFunction) => void) | undefined {
  if (!logger.isLevelEnabled('info')) return undefined;
  return (req, res, next) => {
    if (QUIET.test(req.url)) return next();
    const started = performance.now();
    res.once('finish', () => {
      logger.info(
        {
          req: { method: req.method, url: req.originalUrl ?? req.url, remoteAddress: clientAddress(req, trust) },
          res: { statusCode: res.statusCode },
          responseTime: Math.round(performance.now() - started),
        },
        'request completed',
      );
    });
    next();
  };
}
