import { ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

export const REPO = join(__dirname, '..', '..');

/**
 * The environment a command gets when it stands for a user outside this repository: PATH and HOME
 * (npm's cache), none of the npm_* variables an enclosing `npm test` exports (a workspace, a
 * prefix), which would make a nested npm act on this repository.
 */
export function outsideEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!/^npm_/i.test(key) && key !== 'NODE_OPTIONS' && key !== 'INIT_CWD') env[key] = value;
  return { ...env, ...extra };
}

/** A fresh directory under the system temp dir, checked to lie outside the repository. */
export function outsideDir(name: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  if (!relative(REPO, dir).startsWith('..')) throw new Error(`${dir} is inside the repository`);
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs a command to completion; rejects with its output when it fails or outlives `timeoutMs`. */
export function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { cwd: opts.cwd, env: opts.env ?? outsideEnv(), timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`)) : resolve({ stdout, stderr }),
    ),
  );
}

/** A long-running command whose output lines can be awaited. */
export interface Running {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
  /** Writes one line to its stdin. */
  send(line: string): void;
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

export function start(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): Running {
  const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? outsideEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  const wake = () => waiters.forEach((w) => w());
  child.stdout.on('data', (d: Buffer) => ((out += d.toString()), wake()));
  child.stderr.on('data', (d: Buffer) => ((err += d.toString()), wake()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => (resolve(code), wake())));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    send: (line) => void child.stdin.write(`${line}\n`),
    waitForLine(pattern, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = out.match(pattern);
          if (match) return done(() => resolve(match));
          if (child.exitCode !== null) done(() => reject(new Error(`exited (${child.exitCode}) before ${pattern}:\n${out}\n${err}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${out}\n${err}`))), timeoutMs);
        const done = (settle: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          settle();
        };
        waiters.add(check);
        check();
      });
    },
  };
}
