import type { LoggerService } from '@nestjs/common';
import pino, { Logger as Pino } from 'pino';
import type { AppConfig } from '../config/app-config';
import { prettyLogStream } from './pretty-log-stream';

type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

/** The process's one pino logger: JSON lines on stdout, or the readable form for a person. */
export function createPino(config: AppConfig): Pino {
  const options = {
    level: config.logLevel,
    base: { instanceId: config.instanceId },
  };
  if (config.logFormat === 'json') return pino(options);
  return pino(options, prettyLogStream(config.logLevel === 'debug' || config.logLevel === 'trace'));
}

/**
 * Nest's logger interface over one pino logger, writing the same entries nestjs-pino wrote
 * (`context`, `err`, `msg`), without its request-scoped loggers: those kept an AsyncLocalStorage
 * per request, which turns async hooks on for every promise in the process, heartbeats included.
 * A log line does not say which request it came from; the request log line does (RequestLog).
 */
export class AppLogger implements LoggerService {
  constructor(readonly pino: Pino) {}

  verbose(message: unknown, ...rest: unknown[]): void {
    this.call('trace', message, rest);
  }

  debug(message: unknown, ...rest: unknown[]): void {
    this.call('debug', message, rest);
  }

  log(message: unknown, ...rest: unknown[]): void {
    this.call('info', message, rest);
  }

  warn(message: unknown, ...rest: unknown[]): void {
    this.call('warn', message, rest);
  }

  error(message: unknown, ...rest: unknown[]): void {
    this.call('error', message, rest);
  }

  fatal(message: unknown, ...rest: unknown[]): void {
    this.call('fatal', message, rest);
  }

  /** Nest passes the context last; its exception handlers pass `(message, stack, context)` to error. */
  private call(level: Level, message: unknown, rest: unknown[]): void {
    if (!this.pino.isLevelEnabled(level)) return;
    const fields: Record<string, unknown> = {};
    let params = rest;
    if (rest.length > 0) {
      fields.context = rest[rest.length - 1];
      params = rest.slice(0, -1);
    }
    if (message instanceof Error) {
      fields.err = message;
      this.pino[level](fields, ...(params as []));
    } else if (typeof message === 'object' && message !== null) {
      this.pino[level](Object.assign(fields, message), ...(params as []));
    } else if (level === 'error' && params.length === 1 && typeof params[0] === 'string' && /\n\s*at /.test(params[0])) {
      const err = new Error(String(message));
      err.stack = params[0];
      this.pino[level]({ ...fields, err });
    } else {
      this.pino[level](fields, String(message), ...(params as []));
    }
  }
}
