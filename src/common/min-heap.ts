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
    for (let i = stack.pop(); i !== undefined; i = stack.pop()) {
      const item = this.at(i);
      if (this.key(item) > bound) continue;
      visit(item);
      for (const child of [2 * i + 1, 2 * i + 2]) if (child < this.items.length) stack.push(child);
    }
  }

  push(item: T): void {
    this.items.push(item);
    let i = this.items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.keyAt(parent) <= this.keyAt(i)) break;
      this.swap(parent, i);
      i = parent;
    }
  }

  pop(): T | undefined {
    const top = this.items[0];
    const last = this.items.pop();
    if (this.items.length > 0 && last !== undefined) {
      this.items[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  private siftDown(start: number): void {
    const n = this.items.length;
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < n && this.keyAt(left) < this.keyAt(smallest)) smallest = left;
      if (right < n && this.keyAt(right) < this.keyAt(smallest)) smallest = right;
      if (smallest === i) return;
      this.swap(smallest, i);
      i = smallest;
    }
  }

  private at(i: number): T {
    return this.items.at(i) as T;
  }

  private keyAt(i: number): number {
    return this.key(this.at(i));
  }

  private swap(a: number, b: number): void {
    const item = this.at(a);
    this.items[a] = this.at(b);
    this.items[b] = item;
  }
}
