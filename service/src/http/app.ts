import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import Koa from 'koa';
import type { SnapshotHolder } from '../config/snapshot-holder.js';
import type { Logger } from '../log/logger.js';
import { apiRoutes, type ApiDependencies, type ApiState } from './api-routes.js';
import { DatabaseReadiness } from './database-readiness.js';
import { DrainState, drainMiddleware } from './drain.js';
import { errorHandler } from './errors.js';
import { requestId } from './request-id.js';
import { requestLog } from './request-log.js';
import { securityHeaders } from './security-headers.js';
import { useSessionKeys } from './session.js';
import { gateMiddleware, type TrafficGate } from './traffic-gate.js';

export interface AppDependencies extends ApiDependencies {
  holder: SnapshotHolder;
  gate: TrafficGate;
  logger: Logger;
  retryAfterSeconds: () => number;
  /** Set when the shutdown starts (start.ts); absent: an app that never drains (tests, benchmarks). */
  drain?: DrainState;
}

/**
 * The Koa application: a request id, errors as JSON, a log line per request, helmet, the
 * drain (/readyz 503 once the shutdown starts), the traffic gate,
 * then one snapshot per request (taken once, so a rotation mid-request cannot mix configs).
 */
export function createApp(deps: AppDependencies): Koa {
  const { holder, gate, logger, retryAfterSeconds, drain = new DrainState() } = deps;
  const app = new Koa();
  const router = new Router();

  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  // Reached only through an open gate: ready means secrets loaded, the token valid, and the
  // database answering once a data route found it unavailable (database-readiness.ts).
  const database = new DatabaseReadiness(deps.pools);
  router.get('/readyz', async (ctx) => {
    if (!await database.ready((ctx.state as ApiState).config)) {
      ctx.status = 503;
      ctx.set('Retry-After', '5');
      ctx.body = { error: { code: 'database_unavailable', message: 'the database is unavailable; try again shortly' } };
      return;
    }
    ctx.body = { status: 'ready' };
  });
  const api = apiRoutes(deps);

  // First: every log line of the request, the error handler's included, carries its id.
  app.use(requestId());
  app.use(errorHandler(logger, () => { database.failed(); }));
  app.use(requestLog(logger));
  app.use(securityHeaders());
  app.use(drainMiddleware(drain));
  app.use(gateMiddleware(gate, retryAfterSeconds));
  app.use(async (ctx, next) => {
    const config = holder.current;
    if (config === undefined) {
      ctx.status = 503;
      ctx.body = { error: { code: 'not_ready', message: 'no secrets loaded yet' } };
      return;
    }
    (ctx.state as ApiState).config = config;
    useSessionKeys(ctx, config.secrets.app.session_keys);
    // The database pool of this snapshot stays open for the whole request, rotation or not.
    const release = deps.pools.hold(config);
    try {
      await next();
    } finally {
      release();
    }
  });
  app.use(bodyParser({ enableTypes: ['json'], jsonLimit: '16kb', encoding: 'utf-8' }));
  app.use(router.routes());
  app.use(router.allowedMethods());
  app.use(api.routes());
  app.use(api.allowedMethods());
  return app;
}
