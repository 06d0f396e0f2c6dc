/** A binary min-heap ordered by `key`, so the earliest deadline is read in O(1), removed in O(log n). */
export class MinHeap<T> {
  private readonly items: T[] = [];

  constructor(private readonly key: (item: T) => number) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  /** Visits every item whose key is <= `bound`, touching no item above it. */
  forEachUpTo(bound: number, visit: (item: T) => void): void {
    const stack = this.items.length ? [0] : [];
    while (stack.length) {
      const i = stack.pop()!;
      if (this.key(this.items[i]) > bound) continue;
      visit(this.items[i]);
      for (const child of [2 * i + 1, 2 * i + 2]) if (child < this.items.length) stack.push(child);
    }
  }

  push(item: T): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.key(items[parent]) <= this.key(items[i])) break;
      [items[parent], items[i]] = [items[i], items[parent]];
      i = parent;
    }
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  private siftDown(start: number): void {
    const items = this.items;
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < items.length && this.key(items[left]) < this.key(items[smallest])) smallest = left;
      if (right < items.length && this.key(items[right]) < this.key(items[smallest])) smallest = right;
      if (smallest === i) return;
      [items[smallest], items[i]] = [items[i], items[smallest]];
      i = smallest;
    }
  }
}
