import { bodyParser } from '@koa/bodyparser';
import type { Middleware } from 'koa';
import type { PoolHolder } from '../db/pool-holder.js';
import { useSessionKeys } from './cookies.js';
import { requireSession, type SessionDependencies } from './require-session.js';
import type { SnapshotState } from './snapshot-step.js';
import type { TrustedProxies } from './trusted-proxies.js';

/**
 * What a route may use beyond the steps every request passes, mounted only on the routes that
 * use it: a probe parses no body, keys no cookies and holds no pool. Each reads the request's
 * snapshot, which the snapshot step put in ctx.state.
 */
export interface RouteUses {
  /** The JSON body (16 KB at most): routes that read one. */
  readonly body: Middleware;
  /** Signed cookies keyed with the snapshot's session keys (cookies.ts): routes that read or write one. */
  readonly cookies: Middleware;
  /**
   * The snapshot's database pool, held open until the answer: every query of the request runs
   * on the credentials it started with, whatever rotates meanwhile (pool-holder.ts).
   */
  readonly pool: Middleware;
  /** cookies, pool, then a live session and its tenant's rate (require-session.ts). */
  readonly session: readonly Middleware[];
}

export interface RouteUsesDependencies extends SessionDependencies {
  readonly trustedProxies: TrustedProxies;
  /** Cookies over plain HTTP: APP_ENV=dev only (cookies.ts). */
  readonly plainHttpCookies: boolean;
}

export function routeUses(deps: RouteUsesDependencies): RouteUses {
  const { pools, trustedProxies, plainHttpCookies } = deps;
  const cookies: Middleware = (ctx, next) => {
    const { config } = ctx.state as SnapshotState;
    useSessionKeys(ctx, config.secrets.app.session_keys, trustedProxies.overTls(ctx.req), plainHttpCookies);
    return next();
  };
  const pool = poolHold(pools);
  return {
    body: bodyParser({ enableTypes: ['json'], jsonLimit: '16kb', encoding: 'utf-8' }),
    cookies,
    pool,
    session: [cookies, pool, requireSession(deps)],
  };
}

function poolHold(pools: Pick<PoolHolder, 'hold'>): Middleware {
  return async (ctx, next) => {
    const release = pools.hold((ctx.state as SnapshotState).config);
    try {
      await next();
    } finally {
      release();
    }
  };
}
