/**
 * Remembers the last `size` notification ids, so an at-least-once redelivery of something the
 * app already handled is acked again but not handed to the app twice. Bounded: memory stays flat
 * however long the client runs.
 */
export class DedupeWindow {
  private readonly ids = new Set<string>();

  constructor(private readonly size = 1_000) {}

  /** True the first time an id is seen (within the window). */
  firstTime(id: string): boolean {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.size) this.ids.delete(this.ids.values().next().value as string);
    return true;
  }
}
