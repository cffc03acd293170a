import type { Server } from 'node:http';
import { SnapshotHolder } from './config/snapshot-holder.js';
import { readSettings } from './config/settings.js';
import { createApp } from './http/app.js';
import { createLogger } from './log/logger.js';
import { AgentFileSource } from './secrets/agent-file-source.js';
import { watchFolder } from './secrets/folder-watch.js';

/**
 * Agent mode: wait (bounded) for the agent's first valid render, and only then listen.
 * Anything that stops the start exits 1 with one fatal line naming what was wrong.
 */
async function main(): Promise<void> {
  let settings;
  try {
    settings = readSettings(process.env);
  } catch (error) {
    createLogger('info').fatal({ reason: (error as Error).message }, 'invalid settings in the environment');
    process.exit(1);
  }
  const logger = createLogger(settings.logLevel);
  const holder = new SnapshotHolder();
  const source = new AgentFileSource({
    file: settings.secretsFile, appEnv: settings.appEnv, holder, logger, watchFolder,
  });
  source.start();
  try {
    await source.firstSnapshot(settings.secretsWaitMs);
  } catch (error) {
    logger.fatal({ file: settings.secretsFile, reason: (error as Error).message }, 'no secrets: not starting');
    await source.stop();
    process.exit(1);
  }

  const server: Server = createApp({ holder }).listen(settings.port, () => {
    logger.info({ port: settings.port, mode: 'agent', appEnv: settings.appEnv }, 'listening');
  });
  const shutdown = () => {
    server.close();
    void source.stop();
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

await main();
