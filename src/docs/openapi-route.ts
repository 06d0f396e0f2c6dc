import type { INestApplication } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express/adapters/express-adapter.js';
import type { OpenAPIObject } from '@nestjs/swagger';
import type { Express, NextFunction, Request, Response } from 'express';
import { openApiLibrary } from './openapi-decorators';

/** The first path segments of Swagger UI (with its assets), the JSON and the YAML document; OPS_TOKEN guards them too. */
export const OPENAPI_SEGMENTS = ['docs', 'docs-json', 'docs-yaml'] as const;
const DOCS_PATHS = new RegExp(`^/(${OPENAPI_SEGMENTS.join('|')})(/.*)?$`, 'i');

type SwaggerLibrary = ReturnType<typeof openApiLibrary>;

/**
 * Express middleware that serves /docs (Swagger UI), /docs-json and /docs-yaml, and loads
 * `@nestjs/swagger` for it on the first such request, not at start (src/docs/openapi-decorators.ts
 * says why).
 *
 * Swagger's `SwaggerModule.setup` registers its routes on the HTTP adapter it is given. Added to
 * the application's own adapter after start, they would sit behind Nest's not-found handler; so
 * they go on an Express application of their own, which this middleware, registered where the
 * routes used to be, hands the docs paths to. What that application does not answer goes on down
 * the main chain with the request as Express's mounted applications leave it.
 */
export function openApiDocs(build: (swagger: SwaggerLibrary) => OpenAPIObject): (req: Request, res: Response, next: NextFunction) => void {
  let docs: Express | undefined;
  const mount = (): Express => {
    const swagger = openApiLibrary();
    const adapter = new ExpressAdapter();
    const instance = adapter.getInstance<Express>();
    // helmet has taken the header off by the time this application would put it back.
    instance.disable('x-powered-by');
    // What SwaggerModule.setup uses of an application: its adapter, its static assets, its (absent) global prefix.
    const host = {
      getHttpAdapter: () => adapter,
      useStaticAssets: (path: string, options: object): void => {
        adapter.useStaticAssets(path, options);
      },
    };
    swagger.SwaggerModule.setup('docs', host as unknown as INestApplication, () => build(swagger), { jsonDocumentUrl: 'docs-json' });
    return instance;
  };
  return (req, res, next) => {
    if (!DOCS_PATHS.test(req.path)) return next();
    let app: Express;
    try {
      app = docs ??= mount();
    } catch (err) {
      return next(err);
    }
    const [requestProto, responseProto] = [Object.getPrototypeOf(req) as object, Object.getPrototypeOf(res) as object];
    app(req, res, (err?: unknown) => {
      Object.setPrototypeOf(req, requestProto);
      Object.setPrototypeOf(res, responseProto);
      next(err);
    });
  };
}
