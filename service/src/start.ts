import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rereadIntervalMs, type Settings } from './config/settings.js';
import { PoolHolder } from './db/pool-holder.js';
import { databaseTls } from './db/tls.js';
import { ProjectStore } from './db/projects.js';
import { SnapshotHolder } from './config/snapshot-holder.js';
import { sourceVersions } from './config/snapshot.js';
import { createApp } from './http/app.js';
import { DrainState, drainServer } from './http/drain.js';
import { createAdminApp } from './http/admin-app.js';
import { statusView } from './http/status-view.js';
import { TrafficGate } from './http/traffic-gate.js';
import { WebhookSender } from './http/webhooks.js';
import type { Logger } from './log/logger.js';
import { instrumentVaultApi } from './metrics/instrumented-vault-api.js';
import { ServiceMetrics } from './metrics/service-metrics.js';
import { stopInOrder, type StopStep } from './process/graceful-shutdown.js';
import { AgentFileSource } from './secrets/agent-file-source.js';
import { watchFile } from './secrets/file-watch.js';
import { SdkRefresher } from './secrets/sdk-refresher.js';
import { loginAndLoad, type SecretReads } from './secrets/sdk-source.js';
import { selectMode, type SecretsMode } from './secrets/select-mode.js';
import { readNamedFile } from './config/named-file.js';
import { StartupError } from './config/startup-error.js';
import { AppRoleCredentials, removeCredentialVariables } from './vault/approle-credentials.js';
import { AgentTokenWatcher } from './vault/agent-token-watcher.js';
import { LeaseKeeper } from './vault/lease-keeper.js';
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
  /** The operator's port: /status and /metrics. */
  readonly adminPort: number;
  close(): Promise<void>;
}

function listening(server: Server): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
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
  let fileSource: AgentFileSource | undefined;
  let tokenSource:
    | { mode: 'agent'; file: string }
    | { mode: 'sdk'; initial: LoginResult; reads: SecretReads; login: () => Promise<LoginResult> };
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
  const adminToken = settings.adminTokenFile === '' ? undefined : await readNamedFile('ADMIN_TOKEN_FILE', settings.adminTokenFile);
  // Before Vault: a CA or a certificate that cannot work stops the start with no login spent.
  const databaseSsl = await databaseTls(settings, logger);
  const metrics = new ServiceMetrics();
  const api = instrumentVaultApi(nodeVaultApi(settings.vaultAddr, {
    timeoutMs: settings.vaultRequestTimeoutMs, ca, skipVerify: settings.vaultSkipVerify,
  }), metrics);

  try {
    if (mode === 'agent') {
      // The agent holds the credentials: any left in this environment are only a risk.
      removeCredentialVariables(env);
      if (settings.vaultAddr === '') {
        throw new StartupError('VAULT_ADDR is not set: the service checks the agent\'s token with Vault');
      }
      const source = new AgentFileSource({
        file: settings.secretsFile, appEnv: settings.appEnv, credentials: settings.databaseCredentials, holder, logger, watchFile,
      });
      stops.push({ name: 'rendered file watch', stop: () => source.stop() });
      fileSource = source;
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
      const { snapshot, login, reads } = await loginAndLoad({
        api, credentials, appEnv: settings.appEnv, databaseCredentials: settings.databaseCredentials, logger,
        connectTimeoutMs: settings.vaultConnectTimeoutMs,
      });
      holder.swap(snapshot);
      logger.info({ versions: sourceVersions(snapshot) }, 'secrets loaded from Vault');
      tokenSource = {
        mode: 'sdk', initial: login, reads,
        login: async () => api.loginAppRole(credentials.roleId, await credentials.secretId(api)),
      };
    }
  } catch (error) {
    await stopAll();
    throw error;
  }

  const gate = new TrafficGate(logger);
  const rules = serviceScheduleRules(settings.tokenCheckMaxIntervalMs);
  // Set below in dynamic mode; a new SDK login calls it, so it is reached through this variable.
  let leases: LeaseKeeper | undefined;
  let renewer: SdkTokenRenewer | undefined;
  let refresher: SdkRefresher | undefined;
  let lifecycle: TokenKeeper;
  let token: () => Promise<string | undefined>;
  if (tokenSource.mode === 'agent') {
    const file = tokenSource.file;
    lifecycle = new AgentTokenWatcher({ api, tokenFile: file, readToken: () => readTokenFile(file), report: gate, logger, rules });
    token = () => readTokenFile(file);
  } else {
    const sdk = new SdkTokenRenewer({
      api, initial: tokenSource.initial, login: tokenSource.login, report: gate, logger, rules,
      onNewLogin: () => { void leases?.replaceSoon('a new Vault token: the lease the old token created ends with it'); },
    });
    lifecycle = renewer = sdk;
    token = () => Promise.resolve(sdk.token);
    refresher = new SdkRefresher({
      api, appEnv: settings.appEnv, credentials: settings.databaseCredentials, holder, logger,
      token: () => sdk.token, intervalMs: rereadIntervalMs(settings), initial: tokenSource.reads,
    });
  }
  stops.push({ name: 'token checks', stop: () => lifecycle.stop() });
  if (refresher !== undefined) {
    const rereads = refresher;
    stops.push({ name: 'secret re-reads', stop: () => rereads.stop() });
  }
  if (settings.databaseCredentials === 'dynamic') {
    const replacer = refresher;
    const keeper = new LeaseKeeper({
      api, current: () => holder.current?.lease ?? null, token, report: gate, logger, rules,
      ...(replacer === undefined ? {} : { replace: () => replacer.replaceCredentials() }),
    });
    leases = keeper;
    stops.push({ name: 'lease checks', stop: () => keeper.stop() });
    // New credentials (a render, or the keeper's own replacement): look at their lease at once.
    const unsubscribe = holder.onSwap((next, previous) => {
      if (next.lease?.id !== previous?.lease?.id) void keeper.checkNow();
    });
    stops.push({ name: 'lease swap watch', stop: () => { unsubscribe(); return Promise.resolve(); } });
  }
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
  await leases?.start();
  await refresher?.start();

  const status = statusView({
    mode, appEnv: settings.appEnv, gate, holder, token: () => lifecycle.status(), file: () => fileSource?.stats() ?? null,
    lease: () => leases?.status() ?? null,
  });
  metrics.observe({
    gate, holder, token: () => lifecycle.status(), lease: () => leases?.status() ?? null,
    reloads: () => {
      const counts = fileSource?.stats();
      return { loaded: counts?.reloads ?? 0, refused: counts?.rejected ?? 0 };
    },
  });
  const pools = new PoolHolder(
    { host: settings.databaseHost, port: settings.databasePort, database: settings.databaseName, ssl: databaseSsl }, holder, logger);
  const webhooks = new WebhookSender(settings.webhookUrl, logger);
  // First in the list, so stopped last: deliveries drain first, then the pools close.
  stops.unshift({ name: 'database pools', stop: () => pools.close() }, { name: 'webhook deliveries', stop: () => webhooks.drain() });
  if (renewer !== undefined) {
    const sdk = renewer;
    // After the pools: revoking the token revokes the database user, whose sessions then end.
    stops.unshift({ name: 'token revocation', stop: () => sdk.revoke(api) });
  }
  const drain = new DrainState();
  const app = createApp({
    holder, gate, logger, drain, retryAfterSeconds: () => lifecycle.status().nextCheckInSeconds ?? 5,
    pools, projects: new ProjectStore(), webhooks,
  });
  const admin = createAdminApp({ status, metrics, token: adminToken }).listen(settings.adminPort, settings.adminHost);
  try {
    await listening(admin);
  } catch (error) {
    await stopAll();
    throw new StartupError(`cannot listen on ${settings.adminHost}:${settings.adminPort} (ADMIN_HOST, ADMIN_PORT): ` +
      (error as Error).message);
  }
  // Stopped last: operators watch the shutdown on it.
  stops.unshift({
    name: 'admin listener',
    stop: () => new Promise<void>((resolve) => { admin.close(() => { resolve(); }); admin.closeAllConnections(); }),
  });
  const adminPort = (admin.address() as AddressInfo).port;

  const server = app.listen(settings.port);
  try {
    await listening(server);
  } catch (error) {
    await stopAll();
    throw new StartupError(`cannot listen on port ${settings.port} (PORT): ${(error as Error).message}`);
  }
  const port = (server.address() as AddressInfo).port;
  logger.info({ port, adminPort, mode, appEnv: settings.appEnv, gate: gate.current.state }, 'listening');
  return {
    mode, holder, gate, lifecycle, server, port, adminPort,
    /**
     * Graceful: /readyz answers 503 at once and the service serves on for DRAIN_DELAY_MS,
     * then stops accepting, lets requests in flight finish (10 s at most), then stops the
     * loop and the watchers, waits for webhook deliveries, and closes the database pools.
     * Every step is attempted; rejects naming the steps that failed.
     */
    async close() {
      await drainServer({ server, state: drain, delayMs: settings.drainDelayMs, inFlightLimitMs: 10_000, logger });
      await stopInOrder(stops.splice(0).reverse(), logger);
    },
  };
}
