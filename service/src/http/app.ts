import { bodyParser } from '@koa/bodyparser';
import Router, { type RouterContext } from '@koa/router';
import Koa from 'koa';
import type { SnapshotHolder } from '../config/snapshot-holder.js';
import type { Logger } from '../log/logger.js';
import { apiRoutes, type ApiDependencies, type ApiState } from './api-routes.js';
import { authRoutes, type SignInSettings } from './auth-routes.js';
import type { OidcIssuer } from '../sign-in/oidc-issuer.js';
import { DatabaseReadiness } from './database-readiness.js';
import { DrainState, drainMiddleware } from './drain.js';
import { errorHandler } from './errors.js';
import { requestId } from './request-id.js';
import { requestLog } from './request-log.js';
import { securityHeaders } from './security-headers.js';
import { useSessionKeys } from './cookies.js';
import { gateMiddleware, type TrafficGate } from './traffic-gate.js';
import { TrustedProxies } from './trusted-proxies.js';

export interface AppDependencies extends ApiDependencies {
  holder: SnapshotHolder;
  gate: TrafficGate;
  logger: Logger;
  retryAfterSeconds: () => number;
  /** Set when the shutdown starts (start.ts); absent: an app that never drains (tests, benchmarks). */
  drain?: DrainState;
  /** Whose X-Forwarded-Proto counts (TRUSTED_PROXIES); absent: nobody's. */
  trustedProxies?: TrustedProxies;
  /** The OpenID Connect issuer (OIDC_ISSUER_URL); absent: /auth/login answers 503. */
  issuer?: OidcIssuer;
  signIn: SignInSettings;
  /** Cookies over plain HTTP: APP_ENV=dev only (cookies.ts). */
  plainHttpCookies: boolean;
}


/** One step of the service's middleware, named for the benchmark that measures each one's cost. */
export interface ChainStep {
  readonly name: string;
  /** Typed with the router's context, which every step accepts (the others need less of it). */
  readonly middleware: Koa.Middleware<Koa.DefaultState, RouterContext>;
}

/**
 * The Koa application: a request id, errors as JSON, a log line per request, helmet, the
 * drain (/readyz 503 once the shutdown starts), the traffic gate,
 * then one snapshot per request (taken once, so a rotation mid-request cannot mix configs).
 */
export function createApp(deps: AppDependencies): Koa {
  const app = new Koa();
  for (const step of serviceChain(deps)) app.use(step.middleware);
  return app;
}

/** createApp's middleware, in order (bench/overhead-chain.ts mounts the first k of them). */
export function serviceChain(deps: AppDependencies): readonly ChainStep[] {
  const { holder, gate, logger, retryAfterSeconds, drain = new DrainState(), trustedProxies = new TrustedProxies(), plainHttpCookies } = deps;
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
  const auth = authRoutes(deps);

  return [
    // First: every log line of the request, the error handler's included, carries its id.
    { name: 'request id', middleware: requestId() },
    { name: 'error handler', middleware: errorHandler(logger, () => { database.failed(); }) },
    { name: 'request log', middleware: requestLog(logger) },
    { name: 'security headers', middleware: securityHeaders() },
    { name: 'drain', middleware: drainMiddleware(drain) },
    { name: 'traffic gate', middleware: gateMiddleware(gate, retryAfterSeconds) },
    {
      name: 'snapshot, session keys, pool hold',
      middleware: async (ctx, next) => {
        const config = holder.current;
        if (config === undefined) {
          ctx.status = 503;
          ctx.body = { error: { code: 'not_ready', message: 'no secrets loaded yet' } };
          return;
        }
        (ctx.state as ApiState).config = config;
        useSessionKeys(ctx, config.secrets.app.session_keys, trustedProxies.overTls(ctx.req), plainHttpCookies);
        // The database pool of this snapshot stays open for the whole request, rotation or not.
        const release = deps.pools.hold(config);
        try {
          await next();
        } finally {
          release();
        }
      },
    },
    { name: 'body parser', middleware: bodyParser({ enableTypes: ['json'], jsonLimit: '16kb', encoding: 'utf-8' }) },
    { name: 'routes', middleware: router.routes() },
    { name: 'allowed methods', middleware: router.allowedMethods() },
    { name: 'auth routes', middleware: auth.routes() },
    { name: 'auth allowed methods', middleware: auth.allowedMethods() },
    { name: 'api routes', middleware: api.routes() },
    { name: 'api allowed methods', middleware: api.allowedMethods() },
  ];
}
