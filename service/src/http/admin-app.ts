import { createHash, timingSafeEqual } from 'node:crypto';
import Router from '@koa/router';
import Koa from 'koa';
import type { ServiceMetrics } from '../metrics/service-metrics.js';

export interface AdminDependencies {
  /** The operator view; must never hold a token or a secret value. */
  status: () => unknown;
  metrics: ServiceMetrics;
  /** The bearer token operators and Prometheus present (ADMIN_TOKEN_FILE); undefined: none asked. */
  token: string | undefined;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Constant time whatever the lengths: both sides are hashed to 32 bytes first. */
function sameToken(given: string, expected: Buffer): boolean {
  return timingSafeEqual(digest(given), expected);
}

/**
 * The operator's port: `GET /status` and `GET /metrics`, off the public port and outside the
 * traffic gate, so they answer while traffic is halted, when operators need them most.
 */
export function createAdminApp(deps: AdminDependencies): Koa {
  const app = new Koa();
  const router = new Router();
  const expected = deps.token === undefined ? undefined : digest(deps.token);

  app.use(async (ctx, next) => {
    if (expected !== undefined) {
      const header = ctx.get('authorization');
      const given = /^Bearer (.+)$/.exec(header)?.[1] ?? '';
      if (!sameToken(given, expected)) {
        ctx.status = 401;
        ctx.set('WWW-Authenticate', 'Bearer');
        ctx.body = { error: { code: 'unauthenticated', message: 'the admin port needs the bearer token from ADMIN_TOKEN_FILE' } };
        return;
      }
    }
    await next();
    if (ctx.status === 404 && ctx.body === undefined) {
      ctx.status = 404;
      ctx.body = { error: { code: 'not_found', message: 'the admin port serves GET /status and GET /metrics' } };
    }
  });
  router.get('/status', (ctx) => {
    ctx.body = deps.status();
  });
  router.get('/metrics', async (ctx) => {
    ctx.type = deps.metrics.contentType;
    ctx.body = await deps.metrics.text();
  });
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
