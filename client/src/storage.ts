/** Where learned heartbeat intervals are kept between runs, one entry per network key. */
export interface IntervalStorage {
  get(key: string): string | null | undefined | Promise<string | null | undefined>;
  set(key: string, value: string): void | Promise<void>;
}

/** The default: kept for the life of the process or page. */
export function memoryStorage(): IntervalStorage {
  const values = new Map<string, string>();
  return { get: (key) => values.get(key), set: (key, value) => void values.set(key, value) };
}

interface WebStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/** Browsers: kept in localStorage, so a reopened page starts from what it learned. */
export function localStorageStorage(storage?: WebStorage): IntervalStorage {
  const target = storage ?? (globalThis as { localStorage?: WebStorage }).localStorage;
  if (!target) throw new Error('localStorage is not available here; pass a storage or use memoryStorage()');
  return { get: (key) => target.getItem(key), set: (key, value) => target.setItem(key, value) };
}
