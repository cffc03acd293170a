import { buildSnapshot } from '../../service/src/config/snapshot.js';
import { SnapshotHolder } from '../../service/src/config/snapshot-holder.js';
import { PoolHolder } from '../../service/src/db/pool-holder.js';
import type { AppDependencies } from '../../service/src/http/app.js';
import { TrafficGate } from '../../service/src/http/traffic-gate.js';
import type { Logger } from '../../service/src/log/logger.js';
import { appScope, renderedDocument } from '../../service/test/support/rendered-secrets.js';
import { readSettings } from '../../service/src/config/settings.js';
import { routeDependencies } from '../../service/src/http/route-dependencies.js';

/**
 * The service's app dependencies with one snapshot loaded and the gate open, for benchmarks of
 * the request path. The pool points nowhere: it connects lazily and /readyz never uses it.
 */
export function openDependencies(logger: Logger): AppDependencies {
  const holder = new SnapshotHolder();
  holder.swap(buildSnapshot(appScope('dev'), renderedDocument('dev', 1), 'bench-revision', Date.now()));
  const gate = new TrafficGate(logger);
  gate.valid();
  const pools = new PoolHolder({ host: '127.0.0.1', port: 9, database: 'none' }, holder, logger);
  return { holder, gate, logger, pools, retryAfterSeconds: () => 5, ...routeDependencies(readSettings({})) };
}
