import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = (options?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async'; flavor?: 'regular' | 'last-resort' }) => void;

/**
 * Gives back what building the app took and no longer holds. While Nest builds the app, V8 grows
 * its young generation to 32 MB (a heap full of surviving module objects) and keeps it until its
 * memory reducer runs, some 30 s of idling later; a regular full GC does not shrink it. One
 * memory-reducing full GC (V8's `last-resort` flavour, the one it runs itself before giving up
 * with out-of-memory: it also shrinks the young generation to its minimum) right after listening
 * returns it at once; under load V8 grows the young generation again as allocation needs it.
 * The `gc` function comes from a context of its own (V8's gc extension, switched on only while
 * that context is made), so nothing else in the process gets a `gc` global. Returns whether it ran.
 */
export function releaseStartupMemory(): boolean {
  try {
    const gc = exposedGc();
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    return true;
  } catch {
    return false;
  }
}

function exposedGc(): Gc {
  const global = (globalThis as { gc?: Gc }).gc;
  if (typeof global === 'function') return global; // node --expose-gc
  setFlagsFromString('--expose-gc');
  try {
    return runInNewContext('gc') as Gc;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}
