import type { Logger } from '../log/logger.js';

export interface ExitDependencies {
  /** Calls `done` once the log lines written so far are out (or given up on): `LogOutput.finish`. */
  readonly flushLog: (done: () => void) => void;
  readonly exit: (code: number) => void;
}

/**
 * The one way this process ends itself: its log lines first, then exit. Logging is
 * asynchronous, so exiting straight away could lose the line that says why. The process
 * exits once, with the first non-zero code asked for while the log drains (a crash during
 * a clean stop is still a crash).
 */
export function flushThenExit({ flushLog, exit }: ExitDependencies): (code: number) => void {
  let code: number | undefined;
  return (asked) => {
    if (code !== undefined) {
      if (code === 0) code = asked;
      return;
    }
    code = asked;
    flushLog(() => { exit(code ?? asked); });
  };
}

/** Where uncaught errors arrive: `process`, or an EventEmitter in tests. */
export interface FatalEvents {
  on(event: 'uncaughtException' | 'unhandledRejection', listener: (error: unknown) => void): unknown;
}

/**
 * An error nothing caught ends the process: one fatal line, then exit 1 through `exit` (the
 * flushing one), instead of Node's stack trace on stderr while buffered lines are dropped.
 * The line holds an Error's message only (a stack or the error's own fields could quote a
 * value the failing code held), and only the type of anything else thrown.
 */
export function exitOnFatalErrors(options: {
  events: FatalEvents; logger: Pick<Logger, 'fatal'>; exit: (code: number) => void;
}): void {
  const { events, logger, exit } = options;
  const onFatal = (what: string) => (error: unknown) => {
    try {
      const err = error instanceof Error ? error.message : `a thrown ${typeof error}, not an Error`;
      logger.fatal({ err }, `${what}: exiting`);
    } catch {
      // The log is already closed (the process was exiting): exit all the same.
    }
    exit(1);
  };
  events.on('uncaughtException', onFatal('uncaught exception'));
  events.on('unhandledRejection', onFatal('unhandled rejection'));
}
