/** A minimal typed event emitter; listeners may be async (their promises are awaited by `emitAsync`). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- listener parameter lists differ per event
export class Emitter<Events extends Record<string, (...args: any[]) => unknown>> {
  private readonly listeners = new Map<keyof Events, Set<Events[keyof Events]>>();

  on<E extends keyof Events>(event: E, listener: Events[E]): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => this.off(event, listener);
  }

  off<E extends keyof Events>(event: E, listener: Events[E]): void {
    this.listeners.get(event)?.delete(listener);
  }

  protected emit<E extends keyof Events>(event: E, ...args: Parameters<Events[E]>): void {
    for (const listener of this.listeners.get(event) ?? []) {
      try {
        void Promise.resolve((listener as (...a: unknown[]) => unknown)(...args)).catch(() => undefined);
      } catch {
        // a listener's error is the app's; it must not break the client
      }
    }
  }

  /** Runs every listener and resolves when all are done; rejects if one throws. */
  protected async emitAsync<E extends keyof Events>(event: E, ...args: Parameters<Events[E]>): Promise<void> {
    await Promise.all([...(this.listeners.get(event) ?? [])].map((l) => (l as (...a: unknown[]) => unknown)(...args)));
  }
}
