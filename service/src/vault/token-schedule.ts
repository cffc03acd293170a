import { backoffDelay, type BackoffPolicy } from './backoff.js';
import { maxTimerDelayMs } from './long-timeout.js';

/**
 * When the lifetime watcher wakes next, as pure functions of the TTL and the failures so far:
 * every watched token and lease follows these rules and nothing else.
 */
export interface ScheduleRules {
  /** Longest wait between two checks (0: the TTL alone decides): how fast a revoked token is seen. */
  readonly maxCheckIntervalMs: number;
  /** Shortest wait, so a token about to expire is not checked in a tight loop. */
  readonly minDelayMs: number;
  /** Retries of calls that failed without saying anything about the token. */
  readonly backoff: BackoffPolicy;
  /** Uniform in [0, 1): each instance has its own source. */
  readonly random: () => number;
}

/**
 * Renewal (or, for the agent's token, the next TTL-driven check) at about two thirds of the
 * remaining TTL, so a third is left to retry in, plus a random part of ±1/6 of the TTL (between
 * half and five sixths in all), so replicas started together spread over a third of the TTL
 * instead of calling Vault in step. A narrower ±5% was measured to leave 20 replicas logged in
 * together renewing within the same two seconds (BENCHMARKS.md).
 */
export const checkFraction = 2 / 3;
export const checkSpread = 1 / 3;

export function renewalDelayMs(remainingTtlMs: number, rules: ScheduleRules): number {
  const fraction = checkFraction + checkSpread * (rules.random() - 0.5);
  return Math.max(rules.minDelayMs, Math.round(Math.max(0, remainingTtlMs) * fraction));
}

/** The wait before the next wake when the next due thing is `untilDueMs` away. */
export function wakeDelayMs(untilDueMs: number, rules: ScheduleRules): number {
  let delay = Math.max(rules.minDelayMs, untilDueMs);
  if (rules.maxCheckIntervalMs > 0) delay = Math.min(delay, rules.maxCheckIntervalMs);
  return Math.min(delay, maxTimerDelayMs);
}

/**
 * The wait after the `failures`-th failed call in a row: capped backoff, no longer than the
 * maximum check interval, but never shorter than what Vault asked for with Retry-After (a
 * rate-limit quota is shared by every replica: retrying sooner only makes it worse).
 */
export function retryDelayMs(failures: number, rules: ScheduleRules, retryAfterMs?: number): number {
  let delay = backoffDelay(failures, rules.backoff, rules.random);
  if (rules.maxCheckIntervalMs > 0) delay = Math.min(delay, rules.maxCheckIntervalMs);
  if (retryAfterMs !== undefined) delay = Math.max(delay, retryAfterMs);
  return Math.min(delay, maxTimerDelayMs);
}

/**
 * A renewal that no longer extends the token: the max TTL caps it, or the token is not
 * renewable. Only a new login helps then, and it is best done while the token still works.
 * An uncapped renewal answers exactly the login's TTL (measured against bao: 4, 4, 4, then 3,
 * 2, 1 as the 12 s max TTL nears), so one second short is the cap, not rounding: waiting for the
 * next renewal would leave a second to log in.
 */
export function renewalCapped(renewedTtlSeconds: number, loginTtlSeconds: number, renewable: boolean): boolean {
  return !renewable || renewedTtlSeconds < loginTtlSeconds;
}

/** The service's rules: 250 ms at least between checks; failures retried after 0.25–0.5 s, then twice as long each time, up to 5–10 s. */
export function serviceScheduleRules(maxCheckIntervalMs: number, random: () => number = Math.random): ScheduleRules {
  return { maxCheckIntervalMs, minDelayMs: 250, backoff: { baseMs: 500, capMs: 10_000 }, random };
}
