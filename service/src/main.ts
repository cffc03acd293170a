import { readSettings, type Settings } from './config/settings.js';
import { createLogger } from './log/logger.js';
import { startService } from './start.js';
import { StartupError } from './startup-error.js';

/** The process: settings from the environment, start, and one fatal line and exit 1 when it cannot. */
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
  const shutdown = (signal: string) => {
    logger.info({ signal }, 'shutting down: finishing requests in flight');
    service.close().then(() => {
      logger.info('stopped');
      process.exit(0);
    }, (error: unknown) => {
      logger.error({ err: (error as Error).message }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
} catch (error) {
  if (!(error instanceof StartupError)) throw error;
  logger.fatal({ reason: error.message }, 'not starting');
  process.exit(1);
}
