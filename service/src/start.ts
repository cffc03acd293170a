import { existsSync } from 'node:fs';
import type { Server } from 'node:http';
import { readNamedFile } from './config/named-file.js';
import type { Settings } from './config/settings.js';
import { SnapshotHolder } from './config/snapshot-holder.js';
import { PoolHolder } from './db/pool-holder.js';
import { routeDependencies } from './http/route-dependencies.js';
import { databaseTls } from './db/tls.js';
import { createAdminApp } from './http/admin-app.js';
import { createApp } from './http/app.js';
import { DrainState, drainServer } from './http/drain.js';
import { closeNow, listen } from './http/listen.js';
import { statusView } from './http/status-view.js';
import { TrafficGate } from './http/traffic-gate.js';
import { WebhookDeliveries } from './http/webhook-deliveries.js';
import type { Logger } from './log/logger.js';
import { instrumentVaultApi } from './metrics/instrumented-vault-api.js';
import { ServiceMetrics } from './metrics/service-metrics.js';
import { StopList } from './process/graceful-shutdown.js';
import { stopOrder } from './process/stop-order.js';
import { agentMode } from './secrets/agent-mode.js';
import { databaseLease } from './secrets/database-lease.js';
import { sdkMode } from './secrets/sdk-mode.js';
import { selectMode, type SecretsMode } from './secrets/select-mode.js';
import type { TokenProblem } from './report/token-report.js';
import { serviceScheduleRules } from './vault/token-schedule.js';
import type { LifetimeWatcher } from './vault/lifetime-watcher.js';
import { vaultApiFor } from './vault/vault-client.js';

export interface RunningService {
  readonly mode: SecretsMode;
  readonly holder: SnapshotHolder;
  readonly gate: TrafficGate;
  /** The token's watcher: the agent's token, or the service's own. */
  readonly tokenWatcher: LifetimeWatcher<TokenProblem>;
  readonly server: Server;
  readonly port: number;
  /** The operator's port: /status and /metrics. */
  readonly adminPort: number;
  close(): Promise<void>;
}

/**
 * The composition root. Gets every secret first (the agent's rendered file, or an AppRole
 * login), starts keeping the token and the lease, and only then listens. Throws a StartupError
 * naming what is wrong, having stopped whatever it had started; it never listens then.
 */
export async function startService(settings: Settings, env: NodeJS.ProcessEnv, logger: Logger): Promise<RunningService> {
  const started = new StopList(stopOrder, logger);
  try {
    const mode = selectMode(settings, env, existsSync);
    const adminToken = settings.adminTokenFile === '' ? undefined : await readNamedFile('ADMIN_TOKEN_FILE', settings.adminTokenFile);
    // Before Vault: a CA or a certificate that cannot work stops the start with no login spent.
    const databaseSsl = await databaseTls(settings, logger);
    const metrics = new ServiceMetrics();
    const api = instrumentVaultApi(await vaultApiFor(settings, logger), metrics);
    const holder = new SnapshotHolder();
    const gate = new TrafficGate(logger);
    const context = { settings, env, api, holder, report: gate, rules: serviceScheduleRules(settings.tokenCheckMaxIntervalMs), logger, started };
    const secrets = mode === 'agent' ? await agentMode(context) : await sdkMode(context);
    const leases = settings.databaseCredentials === 'dynamic' ? databaseLease(context, secrets, gate) : undefined;
    await secrets.start();
    await leases?.start();

    const pools = new PoolHolder(
      { host: settings.databaseHost, port: settings.databasePort, database: settings.databaseName, ssl: databaseSsl }, holder, logger);
    started.add('database pools', () => pools.close());
    // A revoked lease shows in PostgreSQL first (its sessions ended, its logins refused).
    if (leases !== undefined) started.add('database errors watch', pools.onCredentialsGone(() => { leases.credentialsGone(); }));
    const routes = routeDependencies(settings);
    const { outbox } = routes;
    const webhooks = outbox === undefined ? undefined : new WebhookDeliveries({
      url: settings.webhookUrl, outbox, pools, current: () => holder.current, open: () => gate.isOpen, logger,
    });
    webhooks?.start();
    started.add('webhook deliveries', () => webhooks?.stop() ?? Promise.resolve());
    const views = { gate, holder, token: () => ({ mode, ...secrets.token.status() }), lease: () => leases?.status() ?? null };
    metrics.observe({ ...views, ...(secrets.agent === undefined ? {} : { agent: secrets.agent }),
      ...(webhooks === undefined ? {} : { webhooks: () => ({ pending: webhooks.pending, counts: webhooks.counts }) }), reloads: () => {
      const stats = secrets.fileStats();
      return { loaded: stats?.reloads ?? 0, refused: stats?.rejected ?? 0, unchanged: stats?.unchanged ?? 0 };
    } });
    const status = statusView({ ...views, mode, appEnv: settings.appEnv, file: () => secrets.fileStats(), agent: () => secrets.agent?.() ?? null });
    const admin = await listen(createAdminApp({ status, metrics, token: adminToken }), settings.adminPort, settings.adminHost, 'ADMIN_HOST, ADMIN_PORT');
    started.add('admin listener', () => closeNow(admin.server));

    const drain = new DrainState();
    const app = createApp({
      holder, gate, logger, drain, retryAfterSeconds: () => secrets.token.status().nextCheckInSeconds ?? 5,
      pools, ...routes,
    });
    const { server, port } = await listen(app, settings.port, undefined, 'PORT');
    logger.info({ port, adminPort: admin.port, mode, appEnv: settings.appEnv, gate: gate.current.state }, 'listening');
    return {
      mode, holder, gate, tokenWatcher: secrets.token, server, port, adminPort: admin.port,
      /**
       * Graceful: /readyz answers 503 at once and the service serves on for DRAIN_DELAY_MS,
       * then stops accepting, lets requests in flight finish (10 s at most), then stops what
       * it started in stopOrder. Every step is attempted; rejects naming the steps that failed.
       */
      async close() {
        await drainServer({ server, state: drain, delayMs: settings.drainDelayMs, inFlightLimitMs: 10_000, logger });
        await started.stop();
      },
    };
  } catch (error) {
    // Its own error is the one to report: each failed stop step has been logged.
    await started.stop().catch(() => undefined);
    throw error;
  }
}
