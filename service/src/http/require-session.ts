import type { Context, Next } from 'koa';
import type { PoolHolder } from '../db/pool-holder.js';
import type { SessionStore, SignedInUser } from '../db/sessions.js';
import { clearCookie, readCookie } from './cookies.js';
import { ClientError } from './errors.js';
import type { SnapshotState } from './snapshot-step.js';
import type { TenantRate } from './tenant-rate.js';

/** What a route behind a session finds in ctx.state. */
export interface SessionState extends SnapshotState {
  tenant: string;
  user: SignedInUser;
  /** The session cookie's token: logout ends the session it names. */
  sessionToken: string;
}

export interface SessionDependencies {
  pools: PoolHolder;
  sessions: SessionStore;
  tenantRate: TenantRate;
}

/**
 * A live session, found in PostgreSQL from the cookie's token, and its tenant held to its rate:
 * every route behind a session counts. A cookie whose signature fails never reaches the
 * database; one whose session has ended is cleared.
 */
export function requireSession({ pools, sessions, tenantRate }: SessionDependencies) {
  return async function sessionCheck(ctx: Context, next: Next): Promise<void> {
    const state = ctx.state as SessionState;
    const token = readCookie(ctx, 'session');
    if (token === undefined) throw new ClientError(401, 'unauthenticated', 'sign in first: GET /auth/login');
    const user = await pools.use((pool) => sessions.find(pool, token), state.config);
    if (user === undefined) {
      clearCookie(ctx, 'session');
      throw new ClientError(401, 'session_ended', 'this session has ended (signed out, unused for SESSION_IDLE_TIMEOUT_MS or ' +
        'older than SESSION_ABSOLUTE_TIMEOUT_MS): sign in again at GET /auth/login');
    }
    const wait = tenantRate.take(user.tenant);
    if (wait > 0) {
      ctx.set('Retry-After', String(wait));
      throw new ClientError(429, 'rate_limited',
        `tenant ${user.tenant} is over ${tenantRate.perSecond} requests per second on this replica (TENANT_REQUESTS_PER_SECOND): retry after ${wait} s`);
    }
    state.tenant = user.tenant;
    state.user = user;
    state.sessionToken = token;
    await next();
  };
}
