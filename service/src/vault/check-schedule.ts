/**
 * When to check (and in SDK mode renew) the token next: about two thirds of its remaining
 * TTL, so there is a third of the TTL left to retry in, plus a random part of ±1/6 of the
 * TTL (between half and five sixths in all), so that replicas started together spread over a
 * third of the TTL instead of calling Vault in step. A narrower ±5% was measured to leave 20
 * replicas logged in together renewing within the same two seconds (BENCHMARKS.md).
 */
export interface CheckScheduleOptions {
  /** Uniform in [0, 1): each instance has its own source. */
  random: () => number;
  /** Upper bound on the delay (0: none), for faster detection of a revoked token. */
  maxIntervalMs: number;
  /** Lower bound, so a token about to expire is not checked in a tight loop. */
  minDelayMs: number;
}

export const checkFraction = 2 / 3;
export const checkSpread = 1 / 3;

export function checkDelayMs(remainingTtlMs: number, options: CheckScheduleOptions): number {
  const fraction = checkFraction + checkSpread * (options.random() - 0.5);
  let delay = Math.max(0, remainingTtlMs) * fraction;
  if (options.maxIntervalMs > 0) delay = Math.min(delay, options.maxIntervalMs);
  return Math.max(options.minDelayMs, Math.round(delay));
}
