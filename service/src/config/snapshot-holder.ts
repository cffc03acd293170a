import type { ConfigSnapshot } from './snapshot.js';

export type SnapshotListener = (snapshot: ConfigSnapshot, previous: ConfigSnapshot | undefined) => void;

/**
 * Holds the current snapshot. A swap replaces one frozen object with another in a single
 * assignment, so whoever took `current` at the start of a request reads the old or the new
 * configuration throughout, never a mix.
 */
export class SnapshotHolder {
  #current: ConfigSnapshot | undefined;
  readonly #listeners = new Set<SnapshotListener>();

  get current(): ConfigSnapshot | undefined {
    return this.#current;
  }

  swap(next: ConfigSnapshot): void {
    const previous = this.#current;
    this.#current = next;
    for (const listener of this.#listeners) listener(next, previous);
  }

  /** Calls `listener` after every swap; returns the function that unsubscribes it. */
  onSwap(listener: SnapshotListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
