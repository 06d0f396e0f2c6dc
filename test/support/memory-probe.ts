import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './app';

const PROBE = join(__dirname, '..', '..', 'bench', 'lib', 'probe.cjs');

/**
 * Reads a gateway process's memory after a full garbage collection, through the bench's probe
 * (bench/lib/probe.cjs, preloaded with --expose-gc; it answers a command on SIGUSR2). A heap read
 * whenever the collector last ran is noise of tens of MB; a collected one is exact to a few KB.
 */
export class MemoryProbe {
  readonly file = join(mkdtempSync(join(tmpdir(), 'pg-probe-')), 'probe.json');
  private seq = 0;

  /** Node arguments and environment to start the gateway with. */
  get nodeArgs(): string[] {
    return ['--expose-gc', '--require', PROBE];
  }

  get env(): Record<string, string> {
    return { BENCH_PROBE_FILE: this.file };
  }

  /** Heap used plus external memory (Buffers), in bytes, after two full collections. */
  async memory(pid: number): Promise<number> {
    writeFileSync(`${this.file}.cmd`, 'memory');
    const want = ++this.seq;
    process.kill(pid, 'SIGUSR2');
    let answer: { seq?: number; heapUsed?: number; external?: number; error?: string } = {};
    await waitFor(() => {
      try {
        answer = JSON.parse(readFileSync(this.file, 'utf8')) as typeof answer;
      } catch {
        return false;
      }
      return answer.seq === want;
    }, 10_000, 10);
    if (answer.error || answer.heapUsed === undefined) throw new Error(`memory probe failed: ${answer.error ?? 'no answer'}`);
    return answer.heapUsed + (answer.external ?? 0);
  }
}
