import { getHeapSpaceStatistics } from 'node:v8';
import { releaseStartupMemory } from './release-memory';

const youngGenerationMb = () => (getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? NaN) / 2 ** 20;

describe('releaseStartupMemory', () => {
  it('shrinks a young generation grown by surviving allocations back to its minimum, without a gc global', () => {
    // What building the app does: many objects that survive a scavenge or two, so V8 grows the young generation.
    let keep: object[] = [];
    for (let i = 0; i < 1_500_000; i++) {
      keep.push({ i, s: `item-${i}` });
      if (keep.length > 200_000) keep = [];
    }
    const grown = youngGenerationMb();
    expect(grown).toBeGreaterThan(8);
    expect(releaseStartupMemory()).toBe(true);
    expect(youngGenerationMb()).toBeLessThanOrEqual(2);
    expect(keep.length).toBeGreaterThan(0); // the live objects are still there
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
  });
});
