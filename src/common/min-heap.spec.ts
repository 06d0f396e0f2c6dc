import { MinHeap } from './min-heap';

describe('MinHeap', () => {
  it('pops in key order and visits only items up to a bound', () => {
    const heap = new MinHeap<number>((n) => n);
    const values = [5, 3, 9, 1, 7, 3, 8, 2];
    values.forEach((v) => heap.push(v));
    const seen: number[] = [];
    heap.forEachUpTo(3, (v) => seen.push(v));
    expect(seen.sort()).toEqual([1, 2, 3, 3]);
    const popped: number[] = [];
    while (heap.size) popped.push(heap.pop()!);
    expect(popped).toEqual([...values].sort((a, b) => a - b));
    expect(heap.pop()).toBeUndefined();
  });
});
