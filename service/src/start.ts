import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Settings } from './config/settings.js';
import { PoolHolder } from './db/pool-holder.js';
import { ProjectStore } from './db/projects.js';
import { SnapshotHolder } from './config/snapshot-holder.js';
import { createApp } from './http/app.js';
import { statusView } from './http/status-view.js';
import { TrafficGate } from './http/traffic-gate.js';
import { WebhookSender } from './http/webhooks.js';
import type { Logger } from './log/logger.js';
import { stopInOrder, type StopStep } from './process/graceful-shutdown.js';
import { AgentFileSource } from './secrets/agent-file-source.js';
import { watchFile } from './secrets/file-watch.js';
import { loginAndLoad } from './secrets/sdk-source.js';
import { selectMode, type SecretsMode } from './secrets/select-mode.js';
import { StartupError } from './config/startup-error.js';
import { AppRoleCredentials, removeCredentialVariables } from './vault/approle-credentials.js';
import { AgentTokenWatcher } from './vault/agent-token-watcher.js';
import { SdkTokenRenewer } from './vault/sdk-token-renewer.js';
import type { TokenKeeper } from './vault/token-report.js';
import { serviceScheduleRules } from './vault/token-schedule.js';
import { nodeVaultApi, type LoginResult } from './vault/vault-api.js';

export interface RunningService {
  readonly mode: SecretsMode;
  readonly holder: SnapshotHolder;
  readonly gate: TrafficGate;
  readonly lifecycle: TokenKeeper;
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
  // Last started, first stopped; every step is attempted even when one fails.
  const stops: StopStep[] = [];
  // After a failed start its own error is the one to report: stopInOrder has logged each failed step.
  const stopAll = () => stopInOrder(stops.splice(0).reverse(), logger).catch(() => undefined);
  let stats = (): unknown => null;
  let tokenSource:
    | { mode: 'agent'; file: string }
    | { mode: 'sdk'; initial: LoginResult; login: () => Promise<LoginResult> };
  let ca: string | undefined;
  if (settings.vaultCaCert !== '') {
    try {
      ca = await readFile(settings.vaultCaCert, 'utf8');
    } catch (error) {
      throw new StartupError(`VAULT_CACERT names ${settings.vaultCaCert}, which cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  if (settings.vaultSkipVerify) {
    logger.warn({ vaultAddr: settings.vaultAddr }, 'VAULT_SKIP_VERIFY=true: Vault\'s TLS certificate is not verified; ' +
      'anyone on the network path can read the secrets and the token');
  }
  const api = nodeVaultApi(settings.vaultAddr, {
    timeoutMs: settings.vaultRequestTimeoutMs, ca, skipVerify: settings.vaultSkipVerify,
  });

  try {
    if (mode === 'agent') {
      // The agent holds the credentials: any left in this environment are only a risk.
      removeCredentialVariables(env);
      if (settings.vaultAddr === '') {
        throw new StartupError('VAULT_ADDR is not set: the service checks the agent\'s token with Vault');
      }
      const source = new AgentFileSource({
        file: settings.secretsFile, appEnv: settings.appEnv, holder, logger, watchFile,
      });
      stops.push({ name: 'rendered file watch', stop: () => source.stop() });
      stats = () => source.stats();
      source.start();
      try {
        await source.firstSnapshot(settings.secretsWaitMs);
      } catch (error) {
        throw new StartupError((error as Error).message);
      }
      await source.watching();
      const file = settings.vaultTokenFile;
      tokenSource = { mode: 'agent', file };
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
  const rules = serviceScheduleRules(settings.tokenCheckMaxIntervalMs);
  const lifecycle: TokenKeeper = tokenSource.mode === 'agent'
    ? new AgentTokenWatcher({
      api, tokenFile: tokenSource.file, readToken: () => readTokenFile(tokenSource.file), report: gate, logger, rules,
    })
    : new SdkTokenRenewer({ api, initial: tokenSource.initial, login: tokenSource.login, report: gate, logger, rules });
  stops.push({ name: 'token checks', stop: () => lifecycle.stop() });
  if (tokenSource.mode === 'agent') {
    // The agent writes a new token after each login: check it at once.
    const tokenWatch = watchFile(tokenSource.file, {
      onChange: () => { void lifecycle.checkNow(); },
      onError: (error) => { logger.warn({ err: error.message }, 'watching the token sink failed; scheduled checks go on'); },
      debounceMs: 25,
    });
    stops.push({ name: 'token sink watch', stop: () => tokenWatch.close() });
    await tokenWatch.ready;
  }
  await lifecycle.start();

  const status = statusView({
    mode, appEnv: settings.appEnv, gate, holder, token: () => lifecycle.status(), file: () => stats(),
  });
  const pools = new PoolHolder(
    { host: settings.databaseHost, port: settings.databasePort, database: settings.databaseName }, holder, logger);
  const webhooks = new WebhookSender(settings.webhookUrl, logger);
  // First in the list, so stopped last: deliveries drain first, then the pools close.
  stops.unshift({ name: 'database pools', stop: () => pools.close() }, { name: 'webhook deliveries', stop: () => webhooks.drain() });
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
     * Every step is attempted; rejects naming the steps that failed.
     */
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => { resolve(); }));
      server.closeIdleConnections();
      const force = setTimeout(() => { server.closeAllConnections(); }, 10_000);
      await closed;
      clearTimeout(force);
      await stopInOrder(stops.splice(0).reverse(), logger);
    },
  };
}
