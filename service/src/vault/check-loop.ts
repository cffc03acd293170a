import { setLongTimeout } from './long-timeout.js';

/**
 * Runs `step` now and again after the delay it returns, one run at a time. `wake()` runs it at
 * once; a wake during a run asks for one more run right after it, so a token the agent writes
 * while a check is under way is always checked. Steps handle their own failures: a step that
 * throws is a bug, and the rejection surfaces.
 */
export class CheckLoop {
  readonly #step: () => Promise<number>;
  readonly #now: () => number;
  #running: Promise<void> | undefined;
  /** Counts wakes, so a run can tell whether one came while it was under way. */
  #wakes = 0;
  #stopped = true;
  #cancelTimer: (() => void) | undefined;
  #nextAt: number | undefined;

  constructor(step: () => Promise<number>, now: () => number) {
    this.#step = step;
    this.#now = now;
  }

  /** Runs the first step now, or after `firstDelayMs` when the caller has just verified the token itself. */
  start(firstDelayMs?: number): Promise<void> {
    this.#stopped = false;
    if (firstDelayMs === undefined) return this.wake();
    this.#arm(firstDelayMs);
    return Promise.resolve();
  }

  wake(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    this.#wakes++;
    if (this.#running !== undefined) return this.#running;
    this.#running = this.#drain();
    return this.#running;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#cancelTimer?.();
    this.#nextAt = undefined;
    await this.#running;
  }

  /** Milliseconds until the next scheduled run; null when none is scheduled. */
  nextInMs(): number | null {
    return this.#nextAt === undefined ? null : Math.max(0, this.#nextAt - this.#now());
  }

  #arm(delayMs: number): void {
    this.#cancelTimer?.();
    this.#nextAt = this.#now() + delayMs;
    this.#cancelTimer = setLongTimeout(() => { void this.wake(); }, delayMs);
  }

  async #drain(): Promise<void> {
    for (;;) {
      const wakes = this.#wakes;
      this.#cancelTimer?.();
      let delay: number;
      try {
        delay = await this.#step();
      } catch (error) {
        this.#running = undefined;
        throw error;
      }
      if (this.#stopped) break;
      if (this.#wakes !== wakes) continue;
      this.#arm(delay);
      break;
    }
    // In the same synchronous turn as the last look at #wakes: no wake can fall in between.
    this.#running = undefined;
  }
}
