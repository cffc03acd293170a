/**
 * Capped exponential backoff with jitter: attempt 0 waits about `baseMs`, each next attempt
 * about twice as long, never more than `capMs`. The random half keeps many replicas from
 * retrying in step; the fixed half keeps the delay from ever being zero.
 */
export interface BackoffPolicy {
  readonly baseMs: number;
  readonly capMs: number;
}

export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.max(0, attempt));
  return Math.max(1, Math.round(ceiling / 2 + (ceiling / 2) * random()));
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Calls `attempt` until it succeeds, fails with an error `isRetryable` rejects, or the next
 * wait would end past `deadlineMs` (on the `now` clock); then rethrows the last error.
 */
export async function retryUntil<T>(
  attempt: () => Promise<T>,
  options: {
    policy: BackoffPolicy;
    deadlineMs: number;
    isRetryable: (error: unknown) => boolean;
    now?: () => number;
    onRetry?: (error: unknown, delayMs: number) => void;
  },
): Promise<T> {
  const now = options.now ?? Date.now;
  for (let n = 0; ; n++) {
    try {
      return await attempt();
    } catch (error) {
      const delay = backoffDelay(n, options.policy);
      if (!options.isRetryable(error) || now() + delay > options.deadlineMs) throw error;
      options.onRetry?.(error, delay);
      await sleep(delay);
    }
  }
}
