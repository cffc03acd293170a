import Router from '@koa/router';
import Koa from 'koa';
import helmet from 'koa-helmet';
import type { SnapshotHolder } from '../config/snapshot-holder.js';
import { gateMiddleware, type TrafficGate } from './traffic-gate.js';

export interface AppDependencies {
  holder: SnapshotHolder;
  gate: TrafficGate;
  /** The operator view; must never hold a token or a secret value. */
  status: () => unknown;
  retryAfterSeconds: () => number;
}

/** The Koa application: helmet, the traffic gate, then the routes. */
export function createApp({ holder, gate, status, retryAfterSeconds }: AppDependencies): Koa {
  const app = new Koa();
  const router = new Router();

  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  // Reached only through an open gate: ready means secrets loaded and the token valid.
  router.get('/readyz', (ctx) => {
    const ready = holder.current !== undefined;
    ctx.status = ready ? 200 : 503;
    ctx.body = ready ? { status: 'ready' } : { status: 'not-ready', reason: 'no secrets loaded' };
  });
  router.get('/status', (ctx) => {
    ctx.body = status();
  });

  app.use(helmet());
  app.use(gateMiddleware(gate, retryAfterSeconds));
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
