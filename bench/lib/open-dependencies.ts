import { buildSnapshot } from '../../service/src/config/snapshot.js';
import { SnapshotHolder } from '../../service/src/config/snapshot-holder.js';
import { PoolHolder } from '../../service/src/db/pool-holder.js';
import type { AppDependencies } from '../../service/src/http/app.js';
import { TrafficGate } from '../../service/src/http/traffic-gate.js';
import type { Logger } from '../../service/src/log/logger.js';
import { appScope, renderedDocument } from '../../service/test/support/rendered-secrets.js';
import { readSettings } from '../../service/src/config/settings.js';
import { routeDependencies } from '../../service/src/http/route-dependencies.js';

/** A real PostgreSQL and the secrets its app role was provisioned with (the data routes' benchmarks). */
export interface BenchDatabase {
  readonly port: number;
  readonly secrets: Parameters<typeof renderedDocument>[2];
}

/**
 * The service's app dependencies with one snapshot loaded and the gate open, for benchmarks of
 * the request path. Without `database` the pool points nowhere: it connects lazily and /readyz
 * never uses it. `env`: the settings' environment (TENANT_REQUESTS_PER_SECOND, ...).
 */
export function openDependencies(logger: Logger, database?: BenchDatabase, env: NodeJS.ProcessEnv = {}): AppDependencies {
  const holder = new SnapshotHolder();
  holder.swap(buildSnapshot(appScope('dev'), renderedDocument('dev', 1, database?.secrets), 'bench-revision', Date.now()));
  const gate = new TrafficGate(logger);
  gate.valid();
  const target = database === undefined ? { host: '127.0.0.1', port: 9, database: 'none' } : { host: '127.0.0.1', port: database.port, database: 'saas' };
  const pools = new PoolHolder(target, holder, logger);
  return { holder, gate, logger, pools, retryAfterSeconds: () => 5, ...routeDependencies(readSettings(env)) };
}
