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
  // A task that throws before returning its promise fails through an await all the same, so
  // `run` has stored the drain's promise before the drain's `finally` clears it.
  const attempt = async (): Promise<void> => { await task(); };
  const drain = async () => {
    try {
      let served = -1;
      while (served !== requests) {
        served = requests;
        await attempt();
      }
    } finally {
      // In the same turn as the last check for requests: a later call starts a new run.
      // Cleared in a `.finally` reaction instead, a call landing in between got the
      // promise of a run that had already finished and was never served.
      inflight = undefined;
    }
  };
  return {
    run() {
      requests++;
      inflight ??= drain();
      return inflight;
    },
    idle: () => inflight ?? Promise.resolve(),
  };
}
