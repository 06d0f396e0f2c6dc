import { Controller, Get, Header, NotFoundException, StreamableFile } from '@nestjs/common';
import { ApiExcludeController } from '../docs/openapi-decorators';
import { createReadStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import { CONSOLE_PAGE, CONSOLE_STYLE } from './console-page';
import { CONSOLE_SCRIPT } from './console-script';

/**
 * Stricter than the gateway-wide policy (security-headers.ts): nothing but the console's own
 * script and stylesheet, fetches to this origin, no inline style, no form posts, no framing.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The measured figures the console links to; the repository's docs/, absent from a slim image. */
const ACCURACY_DOC = join(__dirname, '..', '..', 'docs', 'presence-accuracy.md');

/**
 * /console: a static shell (HTML, CSS, script) that holds no data and needs no credential to load.
 * Everything it shows it fetches from the REST API with the API key or OPS_TOKEN the operator
 * types in, so every number is behind the same guard as the API itself.
 */
@ApiExcludeController()
@Controller('console')
export class ConsoleController {
  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  @Header('Content-Security-Policy', CONSOLE_CSP)
  page(): string {
    return CONSOLE_PAGE;
  }

  @Get('console.js')
  @Header('Content-Type', 'text/javascript; charset=utf-8')
  @Header('Content-Security-Policy', CONSOLE_CSP)
  script(): string {
    return CONSOLE_SCRIPT;
  }

  @Get('console.css')
  @Header('Content-Type', 'text/css; charset=utf-8')
  @Header('Content-Security-Policy', CONSOLE_CSP)
  style(): string {
    return CONSOLE_STYLE;
  }

  @Get('presence-accuracy.md')
  @Header('Content-Type', 'text/plain; charset=utf-8')
  @Header('Content-Security-Policy', CONSOLE_CSP)
  accuracy(): StreamableFile {
    if (!existsSync(ACCURACY_DOC)) throw new NotFoundException('docs/presence-accuracy.md is not part of this build: see the repository');
    return new StreamableFile(createReadStream(ACCURACY_DOC));
  }
}
