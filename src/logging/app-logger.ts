import type { LoggerService } from '@nestjs/common';
import pino, { Logger as Pino } from 'pino';
import type { AppConfig } from '../config/app-config';
import { prettyLogStream } from './pretty-log-stream';

type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

/** JSON lines leave in blocks of at least this many bytes... */
export const LOG_BLOCK_BYTES = 4096;
/** ...or at least this often, and at exit (pino flushes its destination synchronously then). */
export const LOG_FLUSH_MS = 1_000;

/** The JSON destinations made by createPino, for flushLogs. */
const jsonDestinations = new Set<ReturnType<typeof pino.destination>>();

/**
 * The process's one pino logger: JSON lines on stdout, or the readable form for a person. JSON
 * lines are written in blocks (LOG_BLOCK_BYTES, LOG_FLUSH_MS) rather than one write per line: at
 * the default level the request log writes a line per REST request, and a write per line was
 * about a tenth of a POST's CPU (bench/post-ab.mjs at LOG_LEVEL=info, docs/performance.md). A
 * process killed with SIGKILL loses at most the last second of lines.
 */
export function createPino(config: AppConfig): Pino {
  const options = {
    level: config.logLevel,
    base: { instanceId: config.instanceId },
  };
  if (config.logFormat === 'json') {
    const destination = pino.destination({ dest: 1, minLength: LOG_BLOCK_BYTES, periodicFlush: LOG_FLUSH_MS });
    jsonDestinations.add(destination);
    destination.once('close', () => jsonDestinations.delete(destination));
    return pino(options, destination);
  }
  return pino(options, prettyLogStream(config.logLevel === 'debug' || config.logLevel === 'trace'));
}

/** Writes out the JSON lines still held, before something else writes to stdout (the start block). */
export function flushLogs(): void {
  for (const destination of jsonDestinations) {
    try {
      destination.flushSync();
    } catch {
      // a write already in flight finishes it; its lines follow
    }
  }
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
