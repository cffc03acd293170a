import { readSettings, type Settings } from './config/settings.js';
import { createLogger } from './log/logger.js';
import { exitGracefullyOnSignals } from './process/graceful-shutdown.js';
import { startService } from './start.js';
import { StartupError } from './config/startup-error.js';

/** The process: settings from the environment, start (one fatal line and exit 1 when it cannot), stop on a signal. */
let settings: Settings;
try {
  settings = readSettings(process.env);
} catch (error) {
  createLogger('info').fatal({ reason: (error as Error).message }, 'not starting: invalid settings');
  process.exit(1);
}
const logger = createLogger(settings.logLevel);
try {
  const service = await startService(settings, process.env, logger);
  exitGracefullyOnSignals({
    signals: process, exit: (code) => process.exit(code), logger, close: () => service.close(),
  });
} catch (error) {
  if (!(error instanceof StartupError)) throw error;
  logger.fatal({ reason: error.message }, 'not starting');
  process.exit(1);
}
