import { TransientMap } from './transient-map';

describe('TransientMap', () => {
  it('behaves as a Map of what is in flight: insertion order, first is the oldest', () => {
    const m = new TransientMap<number, string>();
    expect(m.size).toBe(0);
    expect(m.first()).toBeUndefined();
    m.set(1, 'a');
    m.set(2, 'b');
    m.set(3, 'c');
    expect(m.has(2)).toBe(true);
    expect(m.size).toBe(3);
    expect(m.first()).toBe('a');
    m.delete(1);
    expect(m.first()).toBe('b');
    expect([...m.keys()]).toEqual([2, 3]);
    m.delete(9);
    expect(m.size).toBe(2);
  });

  it('holds no Map while empty, and starts a new one for the next entry', () => {
    const m = new TransientMap<string, number>();
    const inner = () => (m as unknown as { map?: Map<string, number> }).map;
    m.set('x', 1);
    const first = inner();
    expect(first).toBeInstanceOf(Map);
    m.delete('x');
    expect(inner()).toBeUndefined();
    expect(m.has('x')).toBe(false);
    expect([...m.keys()]).toEqual([]);
    m.set('y', 2);
    expect(inner()).not.toBe(first);
    expect(m.first()).toBe(2);
  });
});
