import { coalesce, type Coalesced } from '../async/coalesce.js';
import { setLongTimeout } from './long-timeout.js';

/**
 * Runs `step` now and again after the delay it returns, one run at a time. `wake()` runs it at
 * once; a wake during a run asks for one more run right after it (coalesce), so a token the
 * agent writes while a check is under way is always checked. Steps handle their own failures:
 * a step that throws is a bug, and the rejection surfaces.
 */
export class CheckLoop {
  readonly #step: () => Promise<number>;
  readonly #now: () => number;
  readonly #runner: Coalesced;
  #stopped = true;
  #cancelTimer: (() => void) | undefined;
  #nextAt: number | undefined;

  constructor(step: () => Promise<number>, now: () => number) {
    this.#step = step;
    this.#now = now;
    this.#runner = coalesce(async () => {
      // A run asked for before stop() is not made after it.
      if (!this.#active()) return;
      // A run the timer did not start makes the pending timer moot: the run arms the next one.
      this.#cancelTimer?.();
      const delay = await this.#step();
      // stop() may have come during the step.
      if (this.#active()) this.#arm(delay);
    });
  }

  /** Runs the first step now, or after `firstDelayMs` when the caller has just verified the token itself. */
  start(firstDelayMs?: number): Promise<void> {
    this.#stopped = false;
    if (firstDelayMs === undefined) return this.wake();
    this.#arm(firstDelayMs);
    return Promise.resolve();
  }

  wake(): Promise<void> {
    return this.#stopped ? Promise.resolve() : this.#runner.run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#cancelTimer?.();
    this.#nextAt = undefined;
    await this.#runner.idle();
  }

  /** Milliseconds until the next scheduled run; null when none is scheduled. */
  nextInMs(): number | null {
    return this.#nextAt === undefined ? null : Math.max(0, this.#nextAt - this.#now());
  }

  #active(): boolean {
    return !this.#stopped;
  }

  #arm(delayMs: number): void {
    this.#cancelTimer?.();
    this.#nextAt = this.#now() + delayMs;
    this.#cancelTimer = setLongTimeout(() => { void this.wake(); }, delayMs);
  }
}
