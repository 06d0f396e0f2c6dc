import { DeadlineQueue } from './deadline-queue';

describe('DeadlineQueue', () => {
  it('hands out each due id once, earliest first, at the deadline and not a millisecond before', () => {
    const q = new DeadlineQueue();
    q.set('c', 300);
    q.set('a', 100);
    q.set('b', 200);
    expect(q.takeDue(99)).toEqual([]);
    expect(q.takeDue(100)).toEqual(['a']);
    expect(q.takeDue(250)).toEqual(['b']);
    expect(q.takeDue(250)).toEqual([]);
    expect(q.takeDue(10_000)).toEqual(['c']);
    expect(q.size).toBe(0);
    expect(q.entries).toBe(0);
  });

  it('honours the latest deadline of a moved id, later or earlier, and forgets deleted ids', () => {
    const q = new DeadlineQueue();
    q.set('later', 100);
    q.set('later', 500); // a refreshed token: the old entry is stale
    q.set('sooner', 400);
    q.set('sooner', 150); // moved earlier: due at the new time
    q.set('gone', 120);
    q.delete('gone');
    expect(q.takeDue(200)).toEqual(['sooner']);
    expect(q.takeDue(499)).toEqual([]);
    expect(q.takeDue(500)).toEqual(['later']);
    expect(q.takeDue(Infinity)).toEqual([]);
  });

  it('keeps memory proportional to the live ids however many deadlines were moved or deleted', () => {
    const q = new DeadlineQueue();
    for (let i = 0; i < 100; i++) q.set(`steady-${i}`, 1_000_000 + i);
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 100; i++) q.set(`steady-${i}`, 1_000_000 + round * 1_000 + i); // refreshed again and again
      for (let i = 0; i < 100; i++) q.set(`churn-${round}-${i}`, 2_000_000); // sessions that came...
      for (let i = 0; i < 100; i++) q.delete(`churn-${round}-${i}`); // ...and went
    }
    expect(q.size).toBe(100);
    expect(q.entries).toBeLessThanOrEqual(2 * 100 + 1_024 + 1);
    const due = q.takeDue(Infinity);
    expect(due).toHaveLength(100);
    expect(new Set(due)).toEqual(new Set(Array.from({ length: 100 }, (_, i) => `steady-${i}`)));
  });
});
