import { constants } from 'node:os';
import type { Logger } from '../log/logger.js';

type ShutdownSignal = 'SIGTERM' | 'SIGINT';

export interface ShutdownOptions {
  /** Where the signals arrive: `process`, or an EventEmitter in tests. */
  readonly signals: { on(signal: ShutdownSignal, listener: (signal: ShutdownSignal) => void): unknown };
  readonly exit: (code: number) => void;
  readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** Everything the process must finish or release before it exits. */
  readonly close: () => Promise<void>;
  /** Exit 1 if `close` has not settled by then: `shutdownTimeoutFor(DRAIN_DELAY_MS)`. */
  readonly timeoutMs?: number;
}

/** What a shutdown may take once the drain delay is over: requests in flight, then the ordered stops. */
const afterDrainMs = 20_000;

/**
 * The shutdown's deadline grows with the drain delay, so a long delay cannot eat the time the
 * requests in flight and the stops need. With the default 5 s delay: 25 s, below Kubernetes'
 * default grace period (30 s), so the process says why it stopped instead of being killed
 * silently; a longer delay needs a longer terminationGracePeriodSeconds.
 */
export function shutdownTimeoutFor(drainDelayMs: number): number {
  return drainDelayMs + afterDrainMs;
}

export const defaultShutdownTimeoutMs = shutdownTimeoutFor(5000);

/**
 * One shutdown per process, whatever signals arrive. The first SIGTERM or SIGINT starts
 * `close`; then 'stopped' and exit 0, or 'shutdown failed' and exit 1 (also past
 * `timeoutMs`). A second signal while `close` runs means the operator will not wait: one
 * warning, and exit at once with 128 + the signal's number (143 for SIGTERM, 130 for
 * SIGINT), as a shell reports a process killed by that signal.
 */
export function exitGracefullyOnSignals(options: ShutdownOptions): void {
  const { signals, exit, logger, close, timeoutMs = defaultShutdownTimeoutMs } = options;
  let state: 'running' | 'stopping' | 'exited' = 'running';
  const exitOnce = (code: number) => {
    if (state === 'exited') return;
    state = 'exited';
    exit(code);
  };

  const onSignal = (signal: ShutdownSignal) => {
    if (state === 'stopping') {
      logger.warn({ signal }, 'second signal during shutdown: exiting now, requests in flight are dropped');
      exitOnce(128 + constants.signals[signal]);
      return;
    }
    if (state === 'exited') return;
    state = 'stopping';
    logger.info({ signal }, 'shutting down');
    const deadline = setTimeout(() => {
      if (state !== 'stopping') return;
      logger.error({ timeoutMs }, 'shutdown failed: still not stopped at the deadline');
      exitOnce(1);
    }, timeoutMs);
    void close().then(() => {
      if (state !== 'stopping') return;
      logger.info('stopped');
      exitOnce(0);
    }, (error: unknown) => {
      if (state !== 'stopping') return;
      logger.error({ err: messageOf(error) }, 'shutdown failed');
      exitOnce(1);
    }).finally(() => { clearTimeout(deadline); });
  };
  signals.on('SIGTERM', onSignal);
  signals.on('SIGINT', onSignal);
}

export interface StopStep {
  readonly name: string;
  readonly stop: () => Promise<void> | void;
}

/**
 * Runs every step in order, even after one fails: a watcher that throws must not leave the
 * database pools open. Each failure is logged with its step's name; then the whole rejects.
 */
export async function stopInOrder(steps: readonly StopStep[], logger: Pick<Logger, 'error'>): Promise<void> {
  const failed: { name: string; error: unknown }[] = [];
  for (const { name, stop } of steps) {
    try {
      await stop();
    } catch (error) {
      logger.error({ step: name, err: messageOf(error) }, 'a shutdown step failed; going on with the next');
      failed.push({ name, error });
    }
  }
  if (failed.length > 0) {
    throw new AggregateError(failed.map((f) => f.error), `shutdown steps failed: ${failed.map((f) => f.name).join(', ')}`);
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * What the service has started, each stopped in one fixed order (`order`, a literal list in the
 * composition root) whatever order they started in, and only those that did start: the same
 * list stops a service that failed half-way through its start.
 */
export class StopList<Name extends string> {
  readonly #order: readonly Name[];
  readonly #logger: Pick<Logger, 'error'>;
  readonly #stops = new Map<Name, StopStep['stop']>();

  constructor(order: readonly Name[], logger: Pick<Logger, 'error'>) {
    this.#order = order;
    this.#logger = logger;
  }

  add(name: Name, stop: StopStep['stop']): void {
    this.#stops.set(name, stop);
  }

  /** Stops everything started, in the fixed order; rejects naming the steps that failed. */
  stop(): Promise<void> {
    const steps = this.#order.flatMap((name) => {
      const stop = this.#stops.get(name);
      return stop === undefined ? [] : [{ name, stop }];
    });
    this.#stops.clear();
    return stopInOrder(steps, this.#logger);
  }
}
