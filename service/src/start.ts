import { existsSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Settings } from './config/settings.js';
import { SnapshotHolder } from './config/snapshot-holder.js';
import { createApp } from './http/app.js';
import type { Logger } from './log/logger.js';
import { AgentFileSource } from './secrets/agent-file-source.js';
import { watchFolder } from './secrets/folder-watch.js';
import { loginAndLoad } from './secrets/sdk-source.js';
import { selectMode, type SecretsMode } from './secrets/select-mode.js';
import { StartupError } from './startup-error.js';
import { AppRoleCredentials } from './vault/approle-credentials.js';
import { nodeVaultApi } from './vault/vault-api.js';

export interface RunningService {
  readonly mode: SecretsMode;
  readonly holder: SnapshotHolder;
  readonly server: Server;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Gets every secret first, by the agent's rendered file or by an AppRole login, and only
 * then listens. Throws a StartupError naming what is wrong; it never listens in that case.
 */
export async function startService(settings: Settings, env: NodeJS.ProcessEnv, logger: Logger): Promise<RunningService> {
  const mode = selectMode(settings, env, existsSync);
  const holder = new SnapshotHolder();
  let stopSource = (): Promise<void> => Promise.resolve();

  if (mode === 'agent') {
    const source = new AgentFileSource({
      file: settings.secretsFile, appEnv: settings.appEnv, holder, logger, watchFolder,
    });
    stopSource = () => source.stop();
    source.start();
    try {
      await source.firstSnapshot(settings.secretsWaitMs);
    } catch (error) {
      await source.stop();
      throw new StartupError((error as Error).message);
    }
  } else {
    // Step 1: the credentials leave the environment before anything else happens.
    const credentials = await AppRoleCredentials.take(env);
    if (settings.vaultAddr === '') throw new StartupError('VAULT_ADDR is not set: SDK mode needs the address of Vault');
    const { snapshot } = await loginAndLoad({
      api: nodeVaultApi(settings.vaultAddr), credentials, appEnv: settings.appEnv, logger,
      connectTimeoutMs: settings.vaultConnectTimeoutMs,
    });
    holder.swap(snapshot);
    logger.info({ versions: Object.fromEntries(snapshot.sources.map((s) => [s.path, s.version])) },
      'secrets loaded from Vault');
  }

  const server = createApp({ holder }).listen(settings.port);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ port, mode, appEnv: settings.appEnv }, 'listening');
  return {
    mode, holder, server, port,
    async close() {
      await new Promise<void>((resolve) => server.close(() => { resolve(); }));
      await stopSource();
    },
  };
}
