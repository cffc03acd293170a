import { setLongTimeout } from './long-timeout.js';

/**
 * The known expiry of a token or a lease, measured on a monotonic clock from the moment Vault
 * vouched for it (never from server timestamps), and an alarm that fires once when it passes
 * unverified.
 */
export class KnownExpiry {
  readonly #onExpired: () => void;
  readonly #now: () => number;
  #expiresAt: number | undefined;
  #cancel: (() => void) | undefined;

  constructor(onExpired: () => void, now: () => number) {
    this.#onExpired = onExpired;
    this.#now = now;
  }

  /**
   * Verified just now with `ttlSeconds` left. Vault counts whole seconds down: what is left is
   * at least `ttlSeconds` and under one more, and the expiry is taken at the low end, so traffic
   * halts before Vault ends the token and the database user its leases hold, never after. So 0
   * is "under a second left", which expires at once, never "no expiry": a token that never
   * expires (a root token) is `clear()`ed.
   */
  set(ttlSeconds: number): void {
    this.clear();
    const now = this.#now();
    const at = now + Math.max(0, ttlSeconds) * 1000;
    this.#expiresAt = at;
    this.#cancel = setLongTimeout(() => {
      if (this.#expiresAt !== at) return;
      this.#expiresAt = undefined;
      this.#onExpired();
    }, at - now);
  }

  clear(): void {
    this.#cancel?.();
    this.#cancel = undefined;
    this.#expiresAt = undefined;
  }

  /** Time left before the known expiry; undefined when none is known (never verified, refused, expired). */
  remainingMs(): number | undefined {
    return this.#expiresAt === undefined ? undefined : Math.max(0, this.#expiresAt - this.#now());
  }
}
