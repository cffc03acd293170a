import { TokenExpiry } from './token-expiry.js';
import type { TokenStatus } from './token-report.js';

/**
 * What a watcher knows of its token: the known expiry (and its alarm), whether it is
 * renewable, the last check, and how many calls in a row have failed.
 */
export class TokenState {
  readonly expiry: TokenExpiry;
  /** Failed calls in a row, for the backoff; reset by every verification. */
  failures = 0;
  readonly #wallClock: () => number;
  #renewable: boolean | null = null;
  #lastCheck: { at: number; ok: boolean } | undefined;

  constructor(onExpired: () => void, now: () => number, wallClock: () => number) {
    this.expiry = new TokenExpiry(onExpired, now);
    this.#wallClock = wallClock;
  }

  /** Vault vouched for the token just now: it is good for `ttlSeconds` more. */
  verified(ttlSeconds: number, renewable: boolean): void {
    this.failures = 0;
    this.#renewable = renewable;
    this.#lastCheck = { at: this.#wallClock(), ok: true };
    this.expiry.set(ttlSeconds);
  }

  /** Vault refused the token: no expiry is known any more. */
  refused(): void {
    this.#lastCheck = { at: this.#wallClock(), ok: false };
    this.expiry.clear();
  }

  status(mode: TokenStatus['mode'], nextInMs: number | null): TokenStatus {
    const remaining = this.expiry.remainingMs();
    return {
      mode,
      ttlSeconds: remaining === undefined ? null : Math.floor(remaining / 1000),
      renewable: this.#renewable,
      lastCheckAt: this.#lastCheck === undefined ? null : new Date(this.#lastCheck.at).toISOString(),
      lastCheckOk: this.#lastCheck?.ok ?? null,
      nextCheckInSeconds: nextInMs === null ? null : nextInMs / 1000,
    };
  }
}
