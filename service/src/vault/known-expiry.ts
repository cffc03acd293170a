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
   * at least `ttlSeconds` and under one more. `atLowEnd` takes the expiry there, so traffic halts
   * before Vault ends it (a TTL of 0, under a second left, expires at once); otherwise at the
   * high end, a second more. Either way 0 is never "no expiry": a token that never expires (a
   * root token) is `clear()`ed.
   */
  set(ttlSeconds: number, atLowEnd = true): void {
    this.clear();
    const now = this.#now();
    const at = now + (Math.max(0, ttlSeconds) + (atLowEnd ? 0 : 1)) * 1000;
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
