/**
 * A Map for entries that come and go quickly (what is in flight right now) on an object that lives
 * long (a socket's outbox, a service). A long-lived Map is itself in V8's old generation, and V8
 * gives it each new table there: one on most deletes that leave it small, about 150 bytes per
 * set-and-delete that only a major GC takes back. This one holds no Map while it is empty, and
 * none for a lone entry either (kept in two fields: most of the time one thing is in flight, and a
 * fan-out gives each of thousands of sockets exactly one); it makes a Map for a burst of two or
 * more, which dies young. Iteration order is insertion order, as a Map's; keys compare as a Map's
 * do (SameValueZero).
 */
export class TransientMap<K, V> {
  private map?: Map<K, V>;
  /** Whether the lone entry below is set (only while there is no map). */
  private single = false;
  private key?: K;
  private value?: V;

  get size(): number {
    return this.map ? this.map.size : this.single ? 1 : 0;
  }

  get(key: K): V | undefined {
    if (this.map) return this.map.get(key);
    return this.single && sameKey(this.key as K, key) ? this.value : undefined;
  }

  has(key: K): boolean {
    if (this.map) return this.map.has(key);
    return this.single && sameKey(this.key as K, key);
  }

  set(key: K, value: V): void {
    if (this.map) {
      this.map.set(key, value);
    } else if (!this.single || sameKey(this.key as K, key)) {
      this.single = true;
      // A Map keeps -0 as +0.
      this.key = (key as unknown) === 0 ? (0 as K) : key;
      this.value = value;
    } else {
      this.map = new Map([[this.key as K, this.value as V], [key, value]]);
      this.clearSingle();
    }
  }

  delete(key: K): void {
    const map = this.map;
    if (map) {
      if (map.delete(key) && map.size === 0) this.map = undefined;
    } else if (this.single && sameKey(this.key as K, key)) {
      this.clearSingle();
    }
  }

  /** The oldest entry's value, if any. */
  first(): V | undefined {
    if (this.map) return this.map.values().next().value;
    return this.single ? this.value : undefined;
  }

  keys(): IterableIterator<K> {
    if (this.map) return this.map.keys();
    return (this.single ? [this.key as K] : []).values();
  }

  private clearSingle(): void {
    this.single = false;
    this.key = undefined;
    this.value = undefined;
  }
}

/** Map's key equality: === but for NaN, which equals itself. */
function sameKey<K>(a: K, b: K): boolean {
  return a === b || (a !== a && b !== b);
}
