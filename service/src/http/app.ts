import Router from '@koa/router';
import Koa from 'koa';
import helmet from 'koa-helmet';
import type { SnapshotHolder } from '../config/snapshot-holder.js';

export interface AppDependencies {
  holder: SnapshotHolder;
}

/** The Koa application: health routes now; the gate and the SaaS routes mount here. */
export function createApp({ holder }: AppDependencies): Koa {
  const app = new Koa();
  const router = new Router();

  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', (ctx) => {
    const ready = holder.current !== undefined;
    ctx.status = ready ? 200 : 503;
    ctx.body = ready ? { status: 'ready' } : { status: 'not-ready', reason: 'no secrets loaded' };
  });

  app.use(helmet());
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
