import type { DestinationStream } from 'pino';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
const INFO = 30;
/** Nest's start-up listing (every module, route and socket event): forty lines that push the start block out of sight. */
const BOOT_CONTEXTS = new Set(['InstanceLoader', 'RoutesResolver', 'RouterExplorer', 'WebSocketsController', 'NestFactory', 'NestApplication']);
/** Fields every entry has or that the line already shows. */
const SHOWN = new Set(['level', 'time', 'pid', 'hostname', 'instanceId', 'context', 'msg', 'req', 'res', 'responseTime', 'err']);

interface Entry {
  level?: number;
  time?: number;
  context?: string;
  msg?: string;
  req?: { method?: string; url?: string };
  res?: { statusCode?: number };
  responseTime?: number;
  err?: { stack?: string; message?: string };
  [key: string]: unknown;
}

/** One pino JSON line as a line a person reads: `12:00:01 WARN  [RedisConnection] message key=value`. */
export function formatLogLine(line: string, showBoot = false): string | undefined {
  let entry: Entry;
  try {
    entry = JSON.parse(line) as Entry;
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`; // not pino's: pass it through as it is
  }
  const level = entry.level ?? INFO;
  if (!showBoot && level <= INFO && entry.context && BOOT_CONTEXTS.has(entry.context)) return undefined;
  const time = new Date(entry.time ?? Date.now()).toTimeString().slice(0, 8);
  let text = entry.msg ?? '';
  if (entry.req && entry.res) text = `${entry.req.method} ${entry.req.url} ${entry.res.statusCode} ${entry.responseTime ?? '?'} ms`;
  const extra = Object.entries(entry)
    .filter(([key]) => !SHOWN.has(key))
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  const context = entry.context ? `[${entry.context}] ` : '';
  const stack = entry.err?.stack ? `\n  ${entry.err.stack.split('\n').join('\n  ')}` : '';
  return `${time} ${LEVELS[level] ?? String(level)} ${context}${text}${extra.length ? ` ${extra.join(' ')}` : ''}${stack}\n`;
}

/**
 * A pino destination for development: formats each entry in-process (no worker thread, no
 * dependency) and writes it to stdout. Production keeps pino's own JSON destination, untouched.
 * At LOG_LEVEL debug or trace, Nest's start-up listing is shown too.
 */
export function prettyLogStream(showBoot: boolean, out: NodeJS.WritableStream = process.stdout): DestinationStream {
  return {
    write(line: string) {
      const text = formatLogLine(line.trimEnd(), showBoot);
      if (text !== undefined) out.write(text);
    },
  };
}
