import { MinHeap } from './min-heap';

interface Entry {
  id: string;
  at: number;
}

/** Stale heap entries tolerated beyond the live count before the heap is rebuilt. */
const COMPACT_SLACK = 1_024;

/**
 * One deadline per id, taken when due: no timer per id, and finding what is due never looks at an
 * id whose deadline is still ahead (a min-heap, O(log n) per deadline). Moving or deleting a
 * deadline does not search the heap: the old entry stays and is skipped when it surfaces (lazy
 * deletion). Sessions that come and go or refresh often would let such leftovers pile up until
 * their old deadlines (hours away), so once they outnumber the live deadlines the heap is rebuilt
 * from the live ones: memory stays proportional to the ids tracked, at an amortized O(log n) per
 * change.
 */
export class DeadlineQueue {
  private readonly live = new Map<string, number>();
  private heap = new MinHeap<Entry>((e) => e.at);

  /** Ids with a deadline. */
  get size(): number {
    return this.live.size;
  }

  /** Entries the heap holds, stale ones included (for tests and metrics). */
  get entries(): number {
    return this.heap.size;
  }

  /** Sets or moves the id's deadline (earlier or later). */
  set(id: string, at: number): void {
    if (this.live.get(id) === at) return;
    this.live.set(id, at);
    this.heap.push({ id, at });
    this.compactIfStale();
  }

  delete(id: string): void {
    if (this.live.delete(id)) this.compactIfStale();
  }

  /** Removes and returns the ids whose deadline is at or before `now`, earliest first. */
  takeDue(now: number): string[] {
    const due: string[] = [];
    for (let top = this.heap.peek(); top && top.at <= now; top = this.heap.peek()) {
      this.heap.pop();
      if (this.live.get(top.id) !== top.at) continue; // moved or deleted since
      this.live.delete(top.id);
      due.push(top.id);
    }
    return due;
  }

  private compactIfStale(): void {
    if (this.heap.size <= 2 * this.live.size + COMPACT_SLACK) return;
    this.heap = new MinHeap<Entry>((e) => e.at);
    for (const [id, at] of this.live) this.heap.push({ id, at });
  }
}
