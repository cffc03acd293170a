/**
 * One process for bench/memory.ts: the service's app listening, with or without the rendered
 * file watcher (AgentFileSource + the token sink watch) and the token watcher (agent mode,
 * 1 s checks against a real bao dev server). Prints one JSON line with its memory after the
 * warm-up and a full GC. Run with node --expose-gc.
 *
 * "admin" is "base" plus the operator's port: the admin listener and the Prometheus metrics,
 * scraped by the parent every second.
 *
 *   node --expose-gc --import tsx bench/memory-child.ts <base|watch-loop|admin> <warm-up ms>
 * Environment: BENCH_SECRETS_FILE, BENCH_TOKEN_FILE, BENCH_VAULT_ADDR.
 */
import { readFile } from 'node:fs/promises';
import { pino } from 'pino';
import { parseRenderedFile } from '../service/src/secrets/rendered-file.js';
import { appScope } from '../service/test/support/rendered-secrets.js';
import { SnapshotHolder } from '../service/src/config/snapshot-holder.js';
import { PoolHolder } from '../service/src/db/pool-holder.js';
import { createAdminApp } from '../service/src/http/admin-app.js';
import { createApp } from '../service/src/http/app.js';
import { ServiceMetrics } from '../service/src/metrics/service-metrics.js';
import { TrafficGate } from '../service/src/http/traffic-gate.js';
import { createLogger } from '../service/src/log/logger.js';
import { AgentFileSource } from '../service/src/secrets/agent-file-source.js';
import { watchFile } from '../service/src/secrets/file-watch.js';
import { AgentToken } from '../service/src/vault/agent-token.js';
import { LifetimeWatcher } from '../service/src/vault/lifetime-watcher.js';
import { serviceScheduleRules } from '../service/src/vault/token-schedule.js';
import { nodeVaultApi } from '../service/src/vault/vault-api.js';
import { readSettings } from '../service/src/config/settings.js';
import { routeDependencies } from '../service/src/http/route-dependencies.js';

const [variant = '', warmText = '15000'] = process.argv.slice(2);
const secretsFile = process.env.BENCH_SECRETS_FILE ?? '';
const tokenFile = process.env.BENCH_TOKEN_FILE ?? '';
const logger = createLogger('info', pino.destination({ dest: '/dev/null', sync: true }));
const holder = new SnapshotHolder();
const gate = new TrafficGate(logger);
const stops: (() => Promise<void>)[] = [];

if (variant === 'watch-loop') {
  const source = new AgentFileSource({ file: secretsFile, scope: appScope('dev'), holder, logger, watchFile });
  source.start();
  await source.firstSnapshot(10_000);
  stops.push(() => source.stop());
  const watcher = new LifetimeWatcher({
    strategy: new AgentToken({
      api: nodeVaultApi(process.env.BENCH_VAULT_ADDR ?? ''), logger, tokenFile, readToken: async () => (await readFile(tokenFile, 'utf8')).trim(),
    }),
    report: gate, logger, rules: serviceScheduleRules(1000),
  });
  const tokenWatch = watchFile(tokenFile, { onChange: () => { void watcher.checkNow(); }, onError: () => undefined, debounceMs: 25 });
  stops.push(() => tokenWatch.close());
  await watcher.start();
  stops.push(() => watcher.stop());
} else {
  holder.swap(parseRenderedFile(secretsFile, await readFile(secretsFile), appScope('dev'), Date.now()));
  gate.valid();
}
const pools = new PoolHolder({ host: '127.0.0.1', port: 9, database: 'none' }, holder, logger);
const app = createApp({
  holder, gate, logger, pools, ...routeDependencies(readSettings({})),
  retryAfterSeconds: () => 5,
});
const server = app.listen(0, '127.0.0.1');
if (variant === 'admin') {
  const metrics = new ServiceMetrics();
  metrics.observe({
    gate, holder, reloads: () => ({ loaded: 1, refused: 0, unchanged: 0 }),
    token: () => ({ mode: 'agent', ttlSeconds: 300, renewable: true, lastCheckAt: null, lastCheckOk: true, nextCheckInSeconds: 10 }),
  });
  const admin = createAdminApp({ status: () => ({ gate: gate.current }), metrics, token: undefined }).listen(0, '127.0.0.1');
  await new Promise((r) => admin.once('listening', r));
  const { port } = admin.address() as { port: number };
  process.stdout.write(`${JSON.stringify({ admin: `http://127.0.0.1:${port}` })}\n`);
  stops.push(() => new Promise<void>((resolve) => { admin.close(() => { resolve(); }); admin.closeAllConnections(); }));
}

await new Promise((r) => setTimeout(r, Number(warmText)));
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');
for (let i = 0; i < 3; i++) {
  gc();
  await new Promise((r) => setTimeout(r, 100));
}
const usage = process.memoryUsage();
process.stdout.write(`${JSON.stringify({ result: { rss: usage.rss, heapUsed: usage.heapUsed, external: usage.external }, reloads: holder.current?.revision, open: gate.isOpen })}\n`);
for (const stop of stops.reverse()) await stop();
server.close();
process.exit(0);
