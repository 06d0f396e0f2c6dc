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

  it('holds no Map while empty or holding one entry, makes one for a burst and drops it once empty', () => {
    const m = new TransientMap<string, number>();
    const inner = () => (m as unknown as { map?: Map<string, number> }).map;
    m.set('x', 1);
    expect(inner()).toBeUndefined();
    expect([m.size, m.get('x'), m.has('x'), m.first(), [...m.keys()]]).toEqual([1, 1, true, 1, ['x']]);
    m.set('x', 5); // the same key: replaced, still no Map
    expect([m.size, m.get('x'), inner()]).toEqual([1, 5, undefined]);
    m.delete('nope');
    expect(m.size).toBe(1);
    m.set('y', 2);
    const burst = inner();
    expect(burst).toBeInstanceOf(Map);
    expect([...m.keys()]).toEqual(['x', 'y']);
    m.delete('x');
    expect(inner()).toBe(burst); // one left: the burst's Map stays until it is empty
    m.delete('y');
    expect(inner()).toBeUndefined();
    expect([m.size, m.get('y'), m.has('y'), m.first(), [...m.keys()]]).toEqual([0, undefined, false, undefined, []]);
    m.set('z', 3);
    expect(inner()).toBeUndefined();
    expect(m.first()).toBe(3);
  });

  it('drops its lone value once deleted (nothing kept alive on a long-lived owner)', () => {
    const m = new TransientMap<number, object>();
    m.set(1, {});
    m.delete(1);
    expect(Object.values(m as unknown as Record<string, unknown>).filter((v) => typeof v === 'object' && v !== null)).toEqual([]);
  });

  it('answers as a Map would, whatever the sequence of sets and deletes (NaN and -0 keys included)', () => {
    const keys = [1, 2, 3, NaN, -0, 0];
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648);
    for (let run = 0; run < 200; run++) {
      const m = new TransientMap<number, number>();
      const model = new Map<number, number>();
      for (let step = 0; step < 30; step++) {
        const key = keys[next() % keys.length]!;
        if (next() % 3 === 0) {
          m.delete(key);
          model.delete(key);
        } else {
          m.set(key, step);
          model.set(key, step);
        }
        expect(m.size).toBe(model.size);
        expect([...m.keys()]).toEqual([...model.keys()]);
        expect(m.first()).toBe(model.values().next().value);
        for (const k of keys) {
          expect(m.has(k)).toBe(model.has(k));
          expect(m.get(k)).toBe(model.get(k));
        }
      }
    }
  });
});
