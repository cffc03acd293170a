import type { ChildProcess } from 'node:child_process';

/**
 * How the stack restarts what it started, as compose's `restart: unless-stopped` does, with
 * bounds: the delay before a restart doubles from `firstDelayMs` up to `maxDelayMs` (back to
 * `firstDelayMs` once a process has run `stableMs`), and a process that has been restarted
 * `limit` times within `windowMs` is not restarted again: the log says so, and which bound.
 */
export interface RestartBounds {
  readonly firstDelayMs: number;
  readonly maxDelayMs: number;
  readonly stableMs: number;
  readonly limit: number;
  readonly windowMs: number;
}

/** The stack's bounds: 0.5, 1, 2, 4, 8 s (Docker starts at 0.1 s, resets after 10 s); 5 restarts per minute. */
export const stackRestartBounds: RestartBounds = { firstDelayMs: 500, maxDelayMs: 8000, stableMs: 10_000, limit: 5, windowMs: 60_000 };

export type RestartDecision =
  | { readonly restart: true; readonly delayMs: number; readonly atMaxDelay: boolean; readonly count: number }
  | { readonly restart: false; readonly bound: string };

const seconds = (ms: number) => `${String(ms / 1000)} s`;

/** One process's restarts: when it exits, whether to start it again, and after how long. */
export class RestartPolicy {
  readonly #bounds: RestartBounds;
  #restarts: number[] = [];
  #nextDelayMs: number;

  constructor(bounds: RestartBounds = stackRestartBounds) {
    this.#bounds = bounds;
    this.#nextDelayMs = bounds.firstDelayMs;
  }

  /** The process exited at `now` (ms), having run `ranMs`. */
  onExit(now: number, ranMs: number): RestartDecision {
    const { firstDelayMs, maxDelayMs, stableMs, limit, windowMs } = this.#bounds;
    this.#restarts = this.#restarts.filter((at) => now - at < windowMs);
    if (this.#restarts.length >= limit) {
      return { restart: false, bound: `the count's bound: ${String(limit)} restarts within ${seconds(windowMs)} already` };
    }
    if (ranMs >= stableMs) this.#nextDelayMs = firstDelayMs;
    const delayMs = this.#nextDelayMs;
    this.#nextDelayMs = Math.min(delayMs * 2, maxDelayMs);
    this.#restarts.push(now);
    return { restart: true, delayMs, atMaxDelay: delayMs >= maxDelayMs, count: this.#restarts.length };
  }
}

/**
 * Watches processes and starts each again when it exits, by its own RestartPolicy, until
 * stop(). `start` starts the process anew (and records it); it may throw, which counts as an exit.
 */
export class Supervisor {
  readonly #log: (line: string) => void;
  readonly #bounds: RestartBounds;
  readonly #policies = new Map<string, RestartPolicy>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #pending = new Set<Promise<void>>();
  #stopped = false;

  constructor(log: (line: string) => void, bounds: RestartBounds = stackRestartBounds) {
    this.#log = log;
    this.#bounds = bounds;
  }

  /** Supervises `child` (started at `startedAtMs`, Date.now() by default), including one that has already exited. */
  watch(name: string, child: ChildProcess, start: () => Promise<ChildProcess>, startedAtMs = Date.now()): void {
    const exited = (code: number | null, signal: NodeJS.Signals | null) => {
      this.#exited(name, signal === null ? `exited with code ${String(code)}` : `was killed by ${signal}`,
        Date.now() - startedAtMs, start);
    };
    if (child.exitCode !== null || child.signalCode !== null) exited(child.exitCode, child.signalCode);
    else child.once('exit', exited);
  }

  /** No more restarts; resolves once a restart already under way has started (and recorded) its process. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    await Promise.all(this.#pending);
  }

  #exited(name: string, how: string, ranMs: number, start: () => Promise<ChildProcess>): void {
    if (this.#stopped) return;
    let policy = this.#policies.get(name);
    if (policy === undefined) {
      policy = new RestartPolicy(this.#bounds);
      this.#policies.set(name, policy);
    }
    const decision = policy.onExit(Date.now(), ranMs);
    const label = name.padEnd(12);
    if (!decision.restart) {
      this.#log(`${label} ${how}; not restarted again (${decision.bound})`);
      return;
    }
    this.#log(`${label} ${how}; restarting it in ${seconds(decision.delayMs)}`
      + `${decision.atMaxDelay ? ' (the backoff\'s bound)' : ''}, restart ${String(decision.count)} of at most`
      + ` ${String(this.#bounds.limit)} within ${seconds(this.#bounds.windowMs)}`);
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (this.#stopped) return;
      const restarting = (async () => {
        const startedAtMs = Date.now();
        try {
          const child = await start();
          this.#log(`${label} restarted (pid ${String(child.pid)})`);
          this.watch(name, child, start, startedAtMs);
        } catch (error) {
          this.#exited(name, `could not be started again (${(error as Error).message})`, Date.now() - startedAtMs, start);
        }
      })();
      this.#pending.add(restarting);
      void restarting.finally(() => this.#pending.delete(restarting));
    }, decision.delayMs);
    this.#timers.add(timer);
  }
}
