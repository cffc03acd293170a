import type Router from '@koa/router';
import type { Context } from 'koa';
import type { DatabaseReadiness } from './database-readiness.js';
import type { RequestStep } from './request-steps.js';
import type { SnapshotState } from './snapshot-step.js';

function alive(ctx: Context): void {
  ctx.body = { status: 'ok' };
}

function ready(ctx: Context): void {
  ctx.body = { status: 'ready' };
}

/**
 * GET /healthz (liveness) and GET /readyz (readiness) on `router`, for every method the router
 * answers. /readyz is reached only through an open gate, with secrets loaded and no drain: ready
 * means that, and the database answering once a data route found it unavailable
 * (database-readiness.ts).
 */
export function probeRoutes(router: Router, database: DatabaseReadiness): void {
  router.get('/healthz', alive);
  router.get('/readyz', async (ctx) => {
    if (!await database.ready((ctx.state as SnapshotState).config)) {
      ctx.status = 503;
      ctx.set('Retry-After', '5');
      ctx.body = { error: { code: 'database_unavailable', message: 'the database is unavailable; try again shortly' } };
      return;
    }
    ready(ctx);
  });
}

/**
 * The last step: a GET probe answered at once, as probeRoutes would answer it. Past the drain,
 * the gate and the snapshot, a probe proves what they check; the router's matching and its
 * chain cost a probe more than the steps together (BENCHMARKS.md 1e). A suspect database
 * needs probeRoutes' asynchronous check, and other methods its answers (HEAD, 405): the
 * router's.
 */
export function probeStep(database: DatabaseReadiness): RequestStep {
  return {
    name: 'probes',
    enter: (ctx) => {
      if (ctx.method !== 'GET') return false;
      if (ctx.path === '/healthz') alive(ctx);
      else if (ctx.path === '/readyz' && !database.suspect) ready(ctx);
      else return false;
      return true;
    },
  };
}
