/**
 * One service app for bench/front-door.ts, in its own process so the load generator does not
 * share its event loop: the service's createApp with its route dependencies from the
 * environment's settings (TENANT_REQUESTS_PER_SECOND, OIDC_*), a snapshot of the secrets in
 * BENCH_SECRETS_FILE, a pool to the PostgreSQL at BENCH_PG_PORT, the gate open, logs through
 * the service's logger to /dev/null.
 *
 *   node --import tsx bench/front-door-server.ts <port>
 */
import { readFile } from 'node:fs/promises';
import { buildSnapshot } from '../service/src/config/snapshot.js';
import { SnapshotHolder } from '../service/src/config/snapshot-holder.js';
import { readSettings } from '../service/src/config/settings.js';
import { PoolHolder } from '../service/src/db/pool-holder.js';
import { createApp } from '../service/src/http/app.js';
import { routeDependencies } from '../service/src/http/route-dependencies.js';
import { TrafficGate } from '../service/src/http/traffic-gate.js';
import { createLogger, logOutput } from '../service/src/log/logger.js';
import { appScope, renderedDocument } from '../service/test/support/rendered-secrets.js';

const port = Number(process.argv[2]);
const logger = createLogger('info', logOutput('/dev/null').stream);
const secrets = JSON.parse(await readFile(process.env.BENCH_SECRETS_FILE ?? '', 'utf8')) as Parameters<typeof renderedDocument>[2];
const holder = new SnapshotHolder();
holder.swap(buildSnapshot(appScope('dev'), renderedDocument('dev', 1, secrets), 'bench', Date.now()));
const gate = new TrafficGate(logger);
gate.valid();
const pools = new PoolHolder({ host: '127.0.0.1', port: Number(process.env.BENCH_PG_PORT), database: 'saas' }, holder, logger);
const app = createApp({ holder, gate, logger, pools, retryAfterSeconds: () => 1, ...routeDependencies(readSettings(process.env)) });
app.listen(port, '127.0.0.1');
