/**
 * One HTTP server for bench/overhead.ts, in its own process so the load generator does not
 * share its event loop. Usage: node --import tsx bench/overhead-server.ts <variant> <port> [<admin port>]
 *
 *   plain           Koa + @koa/router answering GET /readyz with the same JSON as the service
 *   plain-log       plain + the service's requestLog middleware (one pino line per request)
 *   plain-log-helmet  plain-log + koa-helmet, as the service mounts it
 *   service-silent  the service's app with the logger at level 'silent' (attribution only)
 *   service         the service's createApp: its steps (request id, errors, log (pino), headers, drain,
 *                   gate, snapshot) in one middleware, then its router
 *   service-b       a second, identical service process: the A/A control for process-to-process noise
 *   service-loop    service + the agent token's watcher checking a real token against a
 *                   real bao dev server every second (maxCheckIntervalMs 1000)
 *   service-scraped service + the operator's port (admin listener, Prometheus metrics) on
 *                   <admin port>, which bench/overhead.ts scrapes every second
 *   data            the service's createApp on GET /api/projects: a snapshot of the secrets in
 *                   BENCH_SECRETS_FILE, its pool to the PostgreSQL at BENCH_PG_PORT (bench/lib/data-route.ts)
 *   env-secrets     the same route in a plain Koa app whose secrets come from environment
 *                   variables (bench/lib/env-secrets-app.ts): what a user would run without Vault
 *   chain-<k>       the first k of the steps every request passes (serviceChain), then plain's
 *                   /readyz answer; with k one past the last step, the service's router instead:
 *                   bench/overhead-chain.ts
 *
 * Logs go through the service's createLogger and logOutput, the production configuration (pino's
 * asynchronous destination), pointed at /dev/null instead of stdout to keep the disk and the
 * parent's pipe out.
 */
import { readFile } from 'node:fs/promises';
import Router from '@koa/router';
import Koa from 'koa';
import helmet from 'koa-helmet';
import { SnapshotHolder } from '../service/src/config/snapshot-holder.js';
import { createAdminApp } from '../service/src/http/admin-app.js';
import { createApp, serviceChain } from '../service/src/http/app.js';
import { envSecretsApp } from './lib/env-secrets-app.js';
import { openDependencies, type BenchDatabase } from './lib/open-dependencies.js';
import { ServiceMetrics } from '../service/src/metrics/service-metrics.js';
import { requestLog } from '../service/src/http/request-log.js';
import { runSteps } from '../service/src/http/request-steps.js';
import { TrafficGate } from '../service/src/http/traffic-gate.js';
import { createLogger, logOutput } from '../service/src/log/logger.js';
import { AgentToken } from '../service/src/vault/agent-token.js';
import { LifetimeWatcher } from '../service/src/vault/lifetime-watcher.js';
import type { TokenProblem } from '../service/src/report/token-report.js';
import { serviceScheduleRules } from '../service/src/vault/token-schedule.js';
import { nodeVaultApi } from '../service/src/vault/vault-api.js';

const [variant = '', portText = '', adminPortText = ''] = process.argv.slice(2);
const port = Number(portText);
const logger = createLogger(variant === 'service-silent' ? 'silent' : 'info', logOutput('/dev/null').stream);

function plainApp(logged: boolean, withHelmet: boolean): Koa {
  const app = new Koa();
  const router = new Router();
  router.get('/readyz', (ctx) => {
    ctx.body = { status: 'ready' };
  });
  if (logged) app.use(requestLog(logger));
  if (withHelmet) app.use(helmet());
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

function chainApp(steps: number): Koa {
  const app = new Koa();
  const chain = serviceChain(openDependencies(logger));
  app.use(runSteps(chain.steps.slice(0, steps)));
  if (steps > chain.steps.length) {
    app.use(chain.router.routes());
    app.use(chain.router.allowedMethods());
  } else {
    app.use((ctx) => {
      ctx.body = { status: 'ready' };
    });
  }
  return app;
}

async function serviceApp(withLoop: boolean): Promise<{ app: Koa; tokenWatcher?: LifetimeWatcher<TokenProblem> }> {
  const deps = openDependencies(logger);
  if (!withLoop) return { app: createApp(deps) };
  const addr = process.env.BENCH_VAULT_ADDR ?? '';
  const file = process.env.BENCH_TOKEN_FILE ?? '';
  const tokenWatcher = new LifetimeWatcher({
    strategy: new AgentToken({ api: nodeVaultApi(addr), logger, tokenFile: file, readToken: async () => (await readFile(file, 'utf8')).trim() }),
    report: deps.gate, logger, rules: serviceScheduleRules(1000),
  });
  await tokenWatcher.start();
  if (!deps.gate.isOpen) throw new Error(`the token watcher did not keep the gate open: ${JSON.stringify(deps.gate.current)}`);
  return { app: createApp(deps), tokenWatcher };
}

let app: Koa;
let tokenWatcher: LifetimeWatcher<TokenProblem> | undefined;
switch (variant) {
  case 'plain': app = plainApp(false, false); break;
  case 'plain-log': app = plainApp(true, false); break;
  case 'plain-log-helmet': app = plainApp(true, true); break;
  case 'service':
  case 'service-b':
  case 'service-silent': ({ app } = await serviceApp(false)); break;
  case 'service-loop': ({ app, tokenWatcher } = await serviceApp(true)); break;
  case 'data': {
    const secrets = JSON.parse(await readFile(process.env.BENCH_SECRETS_FILE ?? '', 'utf8')) as BenchDatabase['secrets'];
    app = createApp(openDependencies(logger, { port: Number(process.env.BENCH_PG_PORT), secrets }, process.env));
    break;
  }
  case 'env-secrets': app = envSecretsApp(logger, process.env); break;
  case 'service-scraped': {
    ({ app } = await serviceApp(false));
    const metrics = new ServiceMetrics();
    metrics.observe({
      gate: new TrafficGate(logger), holder: new SnapshotHolder(), reloads: () => ({ loaded: 1, refused: 0, unchanged: 0 }),
      token: () => ({ mode: 'agent', ttlSeconds: 300, renewable: true, lastCheckAt: null, lastCheckOk: true, nextCheckInSeconds: 10 }),
    });
    createAdminApp({ status: () => ({}), metrics, token: undefined }).listen(Number(adminPortText), '127.0.0.1');
    break;
  }
  default: {
    const steps = /^chain-(\d+)$/.exec(variant)?.[1];
    if (steps === undefined) throw new Error(`unknown variant "${variant}"`);
    app = chainApp(Number(steps));
  }
}
const server = app.listen(port, '127.0.0.1');
process.once('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  (tokenWatcher?.stop() ?? Promise.resolve()).then(() => process.exit(0), () => process.exit(1));
});
