import { runSchemaJob, readSchemaJobSettings } from './db/schema-job.js';
import { createLogger, logOutput } from './log/logger.js';
import { flushThenExit } from './process/fatal-exit.js';

/**
 * The schema Job's process (deploy/kubernetes/overlays/native-sidecar/schema-job.yaml): creates
 * the tables, says so in one line, exits 0; or says why not in one fatal line and exits 1, for
 * the Job to try again. It serves nothing and holds nothing once done: the agent beside it is
 * then stopped, and its stop hook revokes the credentials this process used.
 */
const output = logOutput();
const exit = flushThenExit({ flushLog: (done) => { output.finish(done, 2000); }, exit: (code) => process.exit(code) });
let logger = createLogger('info', output.stream);
try {
  const settings = readSchemaJobSettings(process.env);
  logger = createLogger(settings.logLevel, output.stream);
  const tables = await runSchemaJob(settings, logger);
  logger.info({ tables }, 'schema ready');
  exit(0);
} catch (error) {
  logger.fatal({ reason: error instanceof Error ? error.message : String(error) }, 'schema not created');
  exit(1);
}
