import { AsyncLocalStorage } from 'node:async_hooks';

/** Fields every log line written while handling one request carries, whichever module writes it. */
export interface LogContext {
  readonly reqId: string;
}

// One store for the process: the logger reads it, the request-id middleware fills it. Carrying it
// in async context means no module needs a child logger passed down to tag its lines.
const storage = new AsyncLocalStorage<LogContext>();

/** Runs `fn` (and everything it starts, synchronously or not) with `context` on its log lines. */
export function withLogContext<T>(context: LogContext, fn: () => T): T {
  return storage.run(context, fn);
}

/** The context of the code running now; undefined outside a request. */
export function currentLogContext(): LogContext | undefined {
  return storage.getStore();
}
