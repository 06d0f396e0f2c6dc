// The library reads the types TypeScript records beside each decorator (`design:type`), and they
// are recorded only if the polyfill is loaded when the class is defined: a DTO imported before
// anything of Nest's (a test may) would otherwise have none.
import 'reflect-metadata';
import type * as SwaggerLibrary from '@nestjs/swagger';

/**
 * The `@nestjs/swagger` decorators the controllers and DTOs use, applied when the OpenAPI document
 * is first asked for rather than when the classes load.
 *
 * The library's package entry loads all of it, and with it all of `es-toolkit/compat` (some 300
 * modules): about 4 MB of heap that every gateway kept although most never serve /docs (the
 * idle-memory round in docs/performance.md). Until the document is first built, each decorator
 * here records where it was applied; `openApiLibrary()` then loads the library and applies each
 * recorded decorator, in the order TypeScript applied them, to the same class, member and
 * descriptor. A class that loads after that gets the library's decorator at once. The metadata
 * the library reads is then what its own decorators would have written at load time
 * (src/docs/openapi-decorators.spec.ts compares the two). Nothing but the document reads it.
 */
type Library = typeof SwaggerLibrary;
/** The decorators this module stands in for. */
export type DecoratorName =
  | 'ApiBearerAuth'
  | 'ApiBody'
  | 'ApiExcludeController'
  | 'ApiHeader'
  | 'ApiOperation'
  | 'ApiProperty'
  | 'ApiPropertyOptional'
  | 'ApiQuery'
  | 'ApiResponse'
  | 'ApiTags';

/** One decorator as written (its arguments) and where TypeScript applied it (class; member; descriptor). */
interface Applied {
  name: DecoratorName;
  args: unknown[];
  site: unknown[];
}

type AnyDecoratorFactory = (...args: unknown[]) => (...site: unknown[]) => unknown;

const pending: Applied[] = [];
let library: Library | undefined;

function apply(lib: Library, { name, args, site }: Applied): void {
  const [target, key, descriptor] = site;
  // A method's metadata goes on its function: take the member as it ended up, in case a decorator
  // applied after this one replaced the descriptor.
  const live = descriptor === undefined ? site : [target, key, Object.getOwnPropertyDescriptor(target, key as PropertyKey) ?? descriptor];
  (lib[name] as unknown as AnyDecoratorFactory)(...args)(...live);
}

function deferred<N extends DecoratorName>(name: N): Library[N] {
  return (...args: unknown[]) =>
    (...site: unknown[]): void => {
      if (library) apply(library, { name, args, site });
      else pending.push({ name, args, site });
    };
}

export const ApiBearerAuth = deferred('ApiBearerAuth');
export const ApiBody = deferred('ApiBody');
export const ApiExcludeController = deferred('ApiExcludeController');
export const ApiHeader = deferred('ApiHeader');
export const ApiOperation = deferred('ApiOperation');
export const ApiProperty = deferred('ApiProperty');
export const ApiPropertyOptional = deferred('ApiPropertyOptional');
export const ApiQuery = deferred('ApiQuery');
export const ApiResponse = deferred('ApiResponse');
export const ApiTags = deferred('ApiTags');

/** `@nestjs/swagger`, loaded on first use, with every decorator recorded so far applied. */
export function openApiLibrary(): Library {
  if (!library) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const lib = require('@nestjs/swagger') as Library;
    // One at a time, so that a decorator that throws is not applied twice by the next call.
    for (let applied = pending.shift(); applied; applied = pending.shift()) apply(lib, applied);
    library = lib;
  }
  return library;
}

/** How many decorators wait for the library (0 once it is loaded). */
export const deferredDecoratorCount = (): number => pending.length;
