import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Settings } from './config/settings.js';
import { PoolHolder } from './db/pool-holder.js';
import { ProjectStore } from './db/projects.js';
import { SnapshotHolder } from './config/snapshot-holder.js';
import { createApp } from './http/app.js';
import { TrafficGate } from './http/traffic-gate.js';
import { WebhookSender } from './http/webhooks.js';
import type { Logger } from './log/logger.js';
import { AgentFileSource } from './secrets/agent-file-source.js';
import { watchFileDebounced } from './secrets/file-watch.js';
import { watchFolder } from './secrets/folder-watch.js';
import { loginAndLoad } from './secrets/sdk-source.js';
import { selectMode, type SecretsMode } from './secrets/select-mode.js';
import { StartupError } from './startup-error.js';
import { AppRoleCredentials } from './vault/approle-credentials.js';
import { TokenLifecycle, type TokenSource } from './vault/token-lifecycle.js';
import { nodeVaultApi } from './vault/vault-api.js';

export interface RunningService {
  readonly mode: SecretsMode;
  readonly holder: SnapshotHolder;
  readonly gate: TrafficGate;
  readonly lifecycle: TokenLifecycle;
  readonly server: Server;
  readonly port: number;
  close(): Promise<void>;
}

async function readTokenFile(file: string): Promise<string | undefined> {
  try {
    const token = (await readFile(file, 'utf8')).trim();
    return token === '' ? undefined : token;
  } catch {
    return undefined;
  }
}

/**
 * Gets every secret first, by the agent's rendered file or by an AppRole login, starts the
 * token lifecycle, and only then listens. Throws a StartupError naming what is wrong; it
 * never listens in that case.
 */
export async function startService(settings: Settings, env: NodeJS.ProcessEnv, logger: Logger): Promise<RunningService> {
  const mode = selectMode(settings, env, existsSync);
  const holder = new SnapshotHolder();
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  };
  let stats = (): unknown => null;
  let tokenSource: TokenSource;
  let ca: string | undefined;
  if (settings.vaultCaCert !== '') {
    try {
      ca = await readFile(settings.vaultCaCert, 'utf8');
    } catch (error) {
      throw new StartupError(`VAULT_CACERT names ${settings.vaultCaCert}, which cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  const api = nodeVaultApi(settings.vaultAddr, settings.vaultRequestTimeoutMs, ca);

  try {
    if (mode === 'agent') {
      if (settings.vaultAddr === '') {
        throw new StartupError('VAULT_ADDR is not set: the service checks the agent\'s token with Vault');
      }
      const source = new AgentFileSource({
        file: settings.secretsFile, appEnv: settings.appEnv, holder, logger, watchFolder,
      });
      stops.push(() => source.stop());
      stats = () => source.stats();
      source.start();
      try {
        await source.firstSnapshot(settings.secretsWaitMs);
      } catch (error) {
        throw new StartupError((error as Error).message);
      }
      const file = settings.vaultTokenFile;
      tokenSource = { mode: 'agent', file, readToken: () => readTokenFile(file) };
    } else {
      // Step 1: the credentials leave the environment before anything else happens.
      const credentials = await AppRoleCredentials.take(env);
      if (settings.vaultAddr === '') throw new StartupError('VAULT_ADDR is not set: SDK mode needs the address of Vault');
      const { snapshot, login } = await loginAndLoad({
        api, credentials, appEnv: settings.appEnv, logger, connectTimeoutMs: settings.vaultConnectTimeoutMs,
      });
      holder.swap(snapshot);
      logger.info({ versions: Object.fromEntries(snapshot.sources.map((s) => [s.path, s.version])) },
        'secrets loaded from Vault');
      tokenSource = {
        mode: 'sdk', initial: login,
        login: async () => api.loginAppRole(credentials.roleId, await credentials.secretId(api)),
      };
    }
  } catch (error) {
    await stopAll();
    throw error;
  }

  const gate = new TrafficGate(logger);
  const lifecycle = new TokenLifecycle({
    api, source: tokenSource, gate, logger, maxCheckIntervalMs: settings.tokenCheckMaxIntervalMs,
  });
  stops.push(() => lifecycle.stop());
  if (tokenSource.mode === 'agent') {
    // The agent writes a new token after each login: check it at once.
    stops.push(watchFileDebounced(tokenSource.file, watchFolder, () => { void lifecycle.checkNow(); },
      (error) => { logger.warn({ err: error.message }, 'watching the token sink failed; scheduled checks go on'); }, 25));
  }
  await lifecycle.start();

  const status = () => {
    const snapshot = holder.current;
    const gateState = gate.current;
    return {
      mode,
      appEnv: settings.appEnv,
      gate: { ...gateState, since: new Date(gateState.since).toISOString() },
      token: lifecycle.status(),
      secrets: {
        loadedAt: snapshot === undefined ? null : new Date(snapshot.loadedAt).toISOString(),
        paths: snapshot?.sources.map(({ path, version }) => ({ path, version })) ?? [],
        file: mode === 'agent' ? stats() : null,
      },
    };
  };
  const pools = new PoolHolder(
    { host: settings.databaseHost, port: settings.databasePort, database: settings.databaseName }, holder, logger);
  stops.unshift(() => pools.close());
  const webhooks = new WebhookSender(settings.webhookUrl, logger);
  stops.unshift(() => webhooks.drain());
  const app = createApp({
    holder, gate, logger, status, retryAfterSeconds: () => lifecycle.status().nextCheckInSeconds ?? 5,
    pools, projects: new ProjectStore(), webhooks,
  });
  const server = app.listen(settings.port);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
  } catch (error) {
    await stopAll();
    throw new StartupError(`cannot listen on port ${settings.port} (PORT): ${(error as Error).message}`);
  }
  const port = (server.address() as AddressInfo).port;
  logger.info({ port, mode, appEnv: settings.appEnv, gate: gate.current.state }, 'listening');
  return {
    mode, holder, gate, lifecycle, server, port,
    /**
     * Graceful: stop accepting, let requests in flight finish (10 s at most), then stop the
     * loop and the watchers, wait for webhook deliveries, and close the database pools.
     */
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => { resolve(); }));
      server.closeIdleConnections();
      const force = setTimeout(() => { server.closeAllConnections(); }, 10_000);
      await closed;
      clearTimeout(force);
      await stopAll();
    },
  };
}
