/** The longest delay setTimeout honours: Node fires anything longer after 1 ms. */
export const maxTimerDelayMs = 2 ** 31 - 1;

/**
 * setTimeout for any delay. A token TTL of 768 h (Vault's default when a role sets none) is
 * 2.76e9 ms, past what one timer can wait, so the wait is made of capped steps. Returns the
 * function that cancels it.
 */
export function setLongTimeout(callback: () => void, delayMs: number): () => void {
  let timer: NodeJS.Timeout | undefined;
  const arm = (remaining: number) => {
    const step = Math.min(Math.max(0, remaining), maxTimerDelayMs);
    timer = setTimeout(() => {
      if (remaining > step) arm(remaining - step);
      else callback();
    }, step);
  };
  arm(delayMs);
  return () => { clearTimeout(timer); };
}
