export interface Coalesced {
  /** Runs the task, or, while a run is under way, asks for one more run after it. */
  run(): Promise<void>;
  /** Resolves when no run is under way. */
  idle(): Promise<void>;
}

/**
 * Wraps `task` so runs never overlap and no request is lost: every call made while a run is
 * under way is served by one more run after it, and each caller's promise settles when the
 * run that serves it has finished.
 */
export function coalesce(task: () => Promise<void>): Coalesced {
  let inflight: Promise<void> | undefined;
  let requests = 0;
  const drain = async () => {
    let served = -1;
    while (served !== requests) {
      served = requests;
      await task();
    }
  };
  return {
    run() {
      requests++;
      inflight ??= drain().finally(() => { inflight = undefined; });
      return inflight;
    },
    idle: () => inflight ?? Promise.resolve(),
  };
}
