import { readSettings, type Settings } from './config/settings.js';
import { createLogger, logOutput } from './log/logger.js';
import { exitOnFatalErrors, flushThenExit } from './process/fatal-exit.js';
import { exitGracefullyOnSignals, shutdownTimeoutFor } from './process/graceful-shutdown.js';
import { startService } from './start.js';
import { StartupError } from './config/startup-error.js';

/**
 * How long an exit waits for stdout to take the buffered log lines. Past it the process
 * exits without them: a reader that stopped reading must not keep a stopped service alive.
 */
const logFlushLimitMs = 2000;

/** The process: settings from the environment, start (one fatal line and exit 1 when it cannot), stop on a signal. */
const output = logOutput();
// Every exit below goes through this one: the line saying why the process ends is never lost.
const exit = flushThenExit({
  flushLog: (done) => { output.finish(done, logFlushLimitMs); },
  exit: (code) => process.exit(code),
});

let settings: Settings | undefined;
try {
  settings = readSettings(process.env);
} catch (error) {
  createLogger('info', output.stream).fatal({ reason: (error as Error).message }, 'not starting: invalid settings');
  exit(1);
}
if (settings !== undefined) {
  const logger = createLogger(settings.logLevel, output.stream);
  exitOnFatalErrors({ events: process, logger, exit });
  try {
    const service = await startService(settings, process.env, logger);
    exitGracefullyOnSignals({
      signals: process, exit, logger, close: () => service.close(), timeoutMs: shutdownTimeoutFor(settings.drainDelayMs),
    });
  } catch (error) {
    // Anything else is a bug: the uncaught-exception handler logs it and exits 1.
    if (!(error instanceof StartupError)) throw error;
    logger.fatal({ reason: error.message }, 'not starting');
    exit(1);
  }
}
