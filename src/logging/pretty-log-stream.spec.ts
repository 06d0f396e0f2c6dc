import { formatLogLine, prettyLogStream } from './pretty-log-stream';

describe('development log lines', () => {
  const time = new Date(2026, 0, 2, 13, 4, 5).getTime();

  it('shows time, level, context, message and the extra fields', () => {
    const line = JSON.stringify({ level: 40, time, pid: 1, hostname: 'h', instanceId: 'gw-1', context: 'RedisConnection', msg: 'Redis (commands): down', attempt: 3, target: { port: 6379 } });
    expect(formatLogLine(line)).toBe('13:04:05 WARN  [RedisConnection] Redis (commands): down attempt=3 target={"port":6379}\n');
  });

  it('turns a request log into one line, and an error into its stack', () => {
    const request = JSON.stringify({ level: 30, time, msg: 'request completed', req: { method: 'POST', url: '/v1/notifications' }, res: { statusCode: 202 }, responseTime: 4 });
    expect(formatLogLine(request)).toBe('13:04:05 INFO  POST /v1/notifications 202 4 ms\n');
    const failure = JSON.stringify({ level: 50, time, context: 'X', msg: 'boom', err: { message: 'boom', stack: 'Error: boom\n    at f (a.ts:1)' } });
    expect(formatLogLine(failure)).toBe('13:04:05 ERROR [X] boom\n  Error: boom\n      at f (a.ts:1)\n');
  });

  it("hides Nest's start-up listing unless asked, but never its warnings", () => {
    const listing = JSON.stringify({ level: 30, time, context: 'RouterExplorer', msg: 'Mapped {/v1, GET} route' });
    expect(formatLogLine(listing)).toBeUndefined();
    expect(formatLogLine(listing, true)).toContain('Mapped {/v1, GET} route');
    expect(formatLogLine(JSON.stringify({ level: 40, time, context: 'InstanceLoader', msg: 'odd' }))).toContain('WARN  [InstanceLoader] odd');
  });

  it('passes a line that is not JSON through, and the stream writes what it formats', () => {
    expect(formatLogLine('plain text')).toBe('plain text\n');
    const written: string[] = [];
    const stream = prettyLogStream(false, { write: (s: string) => written.push(s) } as unknown as NodeJS.WritableStream);
    stream.write(`${JSON.stringify({ level: 30, time, msg: 'hello' })}\n`);
    expect(written).toEqual(['13:04:05 INFO  hello\n']);
  });
});
