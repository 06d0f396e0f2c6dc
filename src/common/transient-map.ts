/**
 * A Map for entries that come and go quickly (what is in flight right now) on an object that lives
 * long (a socket's outbox, a service). A long-lived Map is itself in V8's old generation, and V8
 * gives it each new table there: one on most deletes that leave it small, about 150 bytes per
 * set-and-delete that only a major GC takes back. This one holds no Map while it is empty and
 * makes a new one for the next burst, which dies young. Iteration order is insertion order, as a
 * Map's.
 */
export class TransientMap<K, V> {
  private map?: Map<K, V>;

  get size(): number {
    return this.map?.size ?? 0;
  }

  get(key: K): V | undefined {
    return this.map?.get(key);
  }

  has(key: K): boolean {
    return this.map?.has(key) ?? false;
  }

  set(key: K, value: V): void {
    (this.map ??= new Map()).set(key, value);
  }

  delete(key: K): void {
    const map = this.map;
    if (map?.delete(key) && map.size === 0) this.map = undefined;
  }

  /** The oldest entry's value, if any. */
  first(): V | undefined {
    return this.map?.values().next().value;
  }

  keys(): IterableIterator<K> {
    return (this.map ?? new Map<K, V>()).keys();
  }
}
