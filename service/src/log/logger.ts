import { pino, type DestinationStream, type Logger } from 'pino';
import { currentLogContext } from './log-context.js';

export type { Logger };

/**
 * Fields that may carry a secret, wherever they sit in a log object. Code never logs a
 * secret on purpose; redaction is the second line, for the object logged by mistake.
 */
export const redactedPaths = [
  'password', '*.password', 'token', '*.token', 'client_token', '*.client_token',
  'secret_id', '*.secret_id', 'role_id', '*.role_id', 'secrets', '*.secrets', 'data', '*.data',
  'authorization', '*.authorization', 'cookie', '*.cookie', 'headers.cookie', 'headers["x-vault-token"]',
  'headers["set-cookie"]',
];

/** The request's id (and nothing else) on lines written inside a request, from any module. */
function requestFields(): Record<string, unknown> {
  const context = currentLogContext();
  // A new object each time: pino merges the line's own fields into what the mixin returns.
  return context === undefined ? {} : { reqId: context.reqId };
}

const lineFormat = {
  base: { service: 'saas-app' },
  timestamp: pino.stdTimeFunctions.isoTime,
  formatters: { level: (label: string) => ({ level: label }) },
  mixin: requestFields,
};

/** `destination`: `logOutput().stream` in the service; tests pass a Writable to read what was logged. */
export function createLogger(level: string, destination: DestinationStream): Logger {
  return pino({ ...lineFormat, level, redact: { paths: redactedPaths, censor: '[redacted]' } }, destination);
}

/**
 * A logger for the one line written per request, in the same format, to the same stream, at
 * the same level, without the redaction pass: its fields are fixed (method, path, status,
 * duration, request id) and carry no secret, and the redaction's wildcard paths cost 7 of
 * the line's 10 µs (measured with pino 10 on this project's line).
 */
export function requestLineLogger(logger: Logger): Logger {
  const destination = (logger as unknown as Record<symbol, DestinationStream>)[pino.symbols.streamSym];
  if (destination === undefined) throw new Error('requestLineLogger needs a logger made by createLogger');
  return pino({ ...lineFormat, level: logger.level }, destination);
}

export interface LogOutput {
  readonly stream: DestinationStream;
  /**
   * Calls `done` once every line written so far has reached stdout, in order, or after
   * `limitMs` if stdout does not take them (a reader that stopped reading). Nothing is
   * written after that: this is for exiting.
   */
  finish(done: () => void, limitMs: number): void;
}

/**
 * Stdout (or `dest`, a file: the benchmarks use /dev/null) through pino's asynchronous
 * destination (SonicBoom): a synchronous write(2) per line cost about 40 % of the service's
 * throughput. Buffered lines must reach stdout before the process exits, hence `finish`,
 * which every exit of the process goes through.
 */
export function logOutput(dest: number | string = 1): LogOutput {
  const stream = pino.destination({ dest, sync: false });
  return {
    stream,
    finish(done, limitMs) {
      let called = false;
      const once = () => {
        if (called) return;
        called = true;
        clearTimeout(limit);
        done();
      };
      const limit = setTimeout(() => {
        // Dropped rather than written synchronously: the exit hook pino installs would block on
        // (or retry forever against) the same full pipe that held the asynchronous write.
        stream.destroy();
        once();
      }, limitMs);
      // end(), not flushSync(): end waits for the write already in flight, then writes the rest
      // after it. flushSync writes the rest at once, beside that write (lines out of order) and
      // before it has landed (a line lost when exit follows).
      stream.once('close', once);
      stream.end();
    },
  };
}
