import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { OPENAPI_SEGMENTS } from '../docs/openapi-route';

/** What OPS_TOKEN guards: metrics and the API descriptions (Swagger UI with its assets, JSON, YAML). */
const OPS_PATHS = new RegExp(`^/(metrics|${OPENAPI_SEGMENTS.join('|')}|asyncapi\\.json)(/.*)?$`, 'i');

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Express middleware for OPS_TOKEN. Swagger registers its routes directly on the HTTP adapter, where
 * Nest guards do not run, so this is a middleware registered before them. Paths are matched without
 * regard to case or a trailing slash, as Express routes them; tokens are compared as SHA-256 digests
 * with timingSafeEqual (constant time whatever the presented length).
 */
export function opsAuth(token: string): (req: Request, res: Response, next: NextFunction) => void {
  const expected = digest(token);
  return (req, res, next) => {
    if (!OPS_PATHS.test(req.path)) return next();
    const presented = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (presented !== undefined && timingSafeEqual(digest(presented), expected)) return next();
    res.setHeader('WWW-Authenticate', 'Bearer');
    res.status(401).json({ statusCode: 401, error: 'Unauthorized', message: 'Authorization: Bearer <OPS_TOKEN> is required' });
  };
}
