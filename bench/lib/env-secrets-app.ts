import Router from '@koa/router';
import Koa from 'koa';
import pg from 'pg';
import { readSettings } from '../../service/src/config/settings.js';
import { poolMaxConnections } from '../../service/src/db/pool-holder.js';
import { readPage } from '../../service/src/http/api-routes.js';
import { ClientError, errorHandler } from '../../service/src/http/errors.js';
import { requestId } from '../../service/src/http/request-id.js';
import { requestLog } from '../../service/src/http/request-log.js';
import { routeDependencies } from '../../service/src/http/route-dependencies.js';
import { securityHeaders } from '../../service/src/http/security-headers.js';
import type { Logger } from '../../service/src/log/logger.js';

/**
 * What a user would run instead of the service: the same Koa app with its secrets in
 * environment variables (DATABASE_USERNAME, DATABASE_PASSWORD, SESSION_KEYS, comma-separated)
 * and no Vault, so no gate, no drain, no snapshot and no pool per snapshot. It mounts the
 * service's own request id, error handler, request log and security headers (none of them is
 * about Vault) and answers GET /api/projects with the service's stores and page rules: a
 * signed session cookie, the session looked up in PostgreSQL, the tenant's rate, one page.
 * It parses no body, as its one data route has none.
 */
export function envSecretsApp(logger: Logger, env: NodeJS.ProcessEnv): Koa {
  const app = new Koa();
  app.keys = (env.SESSION_KEYS ?? '').split(',');
  const pool = new pg.Pool({
    host: '127.0.0.1', port: Number(env.BENCH_PG_PORT), database: 'saas', user: env.DATABASE_USERNAME, password: env.DATABASE_PASSWORD,
    max: poolMaxConnections, idleTimeoutMillis: 0, connectionTimeoutMillis: 5000,
  });
  const { sessions, projects, tenantRate } = routeDependencies(readSettings(env));
  const router = new Router();
  router.get('/readyz', (ctx) => {
    ctx.body = { status: 'ready' };
  });
  router.get('/api/projects', async (ctx) => {
    const token = ctx.cookies.get('saas_session', { signed: true });
    const user = token === undefined ? undefined : await sessions.find(pool, token);
    if (user === undefined) throw new ClientError(401, 'unauthenticated', 'sign in first');
    if (tenantRate.take(user.tenant) > 0) throw new ClientError(429, 'rate_limited', 'over the tenant\'s rate');
    ctx.body = await projects.list(pool, user.tenant, readPage(ctx.query));
  });
  app.use(requestId());
  app.use(errorHandler(logger));
  app.use(requestLog(logger));
  app.use(securityHeaders());
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
