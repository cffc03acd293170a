import Router from '@koa/router';
import * as oidc from 'openid-client';
import type { ConfigSnapshot } from '../config/snapshot.js';
import type { Logger } from '../log/logger.js';
import { IssuerUnavailable, type OidcIssuer } from '../sign-in/oidc-issuer.js';
import { decodeSignInState, encodeSignInState, signInLifetimeMs } from '../sign-in/sign-in-state.js';
import { clearCookie, readCookie, writeCookie } from './cookies.js';
import { ClientError } from './errors.js';
import type { SessionDependencies, SessionState } from './require-session.js';
import type { RouteUses } from './route-uses.js';
import type { SnapshotState } from './snapshot-step.js';

export interface SignInSettings {
  /** OIDC_REDIRECT_URL: the callback as the browser reaches it, and as the issuer has it registered. */
  readonly redirectUrl: string;
  readonly scopes: string;
  readonly tenantClaim: string;
  /** The session cookie's age in the browser: the server's own limit (SessionStore) is what counts. */
  readonly sessionAbsoluteMs: number;
}

export interface AuthDependencies extends SessionDependencies {
  /** Absent: OIDC_ISSUER_URL is not set, and /auth/login says so. */
  readonly issuer?: OidcIssuer;
  readonly signIn: SignInSettings;
  readonly logger: Logger;
}

/**
 * Callbacks finishing at once on one replica, at most: each holds a request to the issuer open,
 * and the route needs no session, so nothing else bounds them.
 */
export const callbacksAtOnce = 32;

const tenantPattern = /^[a-z0-9][a-z0-9-]{1,62}$/;

/** A tenant's name: 2 to 63 lowercase letters, digits or dashes, not starting with a dash. */
export function isTenant(value: unknown): value is string {
  return typeof value === 'string' && tenantPattern.test(value);
}

const signInFailed = (why: string) => new ClientError(400, 'sign_in_failed', `${why}: start again at GET /auth/login`);

/**
 * Why openid-client refused the issuer's answer, in words that hold no token or code: the
 * OAuth error code the issuer sent, or openid-client's own check that failed.
 */
function refusal(error: unknown): string {
  if (error instanceof oidc.AuthorizationResponseError) return `the issuer answered ${error.error}`;
  if (error instanceof oidc.ResponseBodyError) return `the issuer refused the code: ${error.error}`;
  // openid-client wraps the check that failed (oauth4webapi's) as the cause: its words say which.
  const { cause } = error as { cause?: unknown };
  const failed = cause instanceof Error ? cause : error;
  const { code, message } = failed as { code?: unknown; message?: unknown };
  return `the issuer's answer failed a check (${typeof code === 'string' ? code : 'no code'}: ${String(message)})`;
}

/** The issuer did not answer, as opposed to answering no: a network failure or a timeout. */
function unreachable(error: unknown): boolean {
  return error instanceof IssuerUnavailable || (error instanceof TypeError && !(error as { code?: unknown }).code) ||
    (error instanceof DOMException && ['TimeoutError', 'AbortError'].includes(error.name));
}

/**
 * Sign-in with OpenID Connect (authorization code, PKCE, state and nonce) and the sessions it
 * opens, added to `router`: GET /auth/login sends the browser to the issuer, GET /auth/callback
 * ends the flow and opens a session for the tenant the verified ID token names, POST
 * /auth/logout ends this session, POST /auth/logout-everywhere every session of this user. The
 * client id and secret come from the request's snapshot (the oidc group). No route reads a body.
 */
export function authRoutes(router: Router, deps: AuthDependencies, uses: RouteUses): void {
  const { pools, sessions, issuer, signIn, logger } = deps;

  async function configuration(config: ConfigSnapshot): Promise<oidc.Configuration> {
    if (issuer === undefined) {
      throw new ClientError(503, 'sign_in_unavailable', 'sign-in is not configured: set OIDC_ISSUER_URL and OIDC_REDIRECT_URL');
    }
    return issuer.configuration(config.secrets.oidc).catch((error: unknown) => {
      logger.warn({ err: (error as Error).message }, 'the OpenID Connect issuer is unavailable');
      throw new ClientError(503, 'sign_in_unavailable', `the issuer ${issuer.url} does not answer: try again shortly`);
    });
  }

  router.get('/auth/login', uses.cookies, async (ctx) => {
    const { config } = ctx.state as SnapshotState;
    const verifier = oidc.randomPKCECodeVerifier();
    const state = { verifier, state: oidc.randomState(), nonce: oidc.randomNonce(), startedAt: Date.now() };
    // First: plain HTTP outside dev is refused (tls_required) whatever the issuer's state.
    writeCookie(ctx, 'signIn', encodeSignInState(state), signInLifetimeMs);
    const client = await configuration(config);
    ctx.redirect(oidc.buildAuthorizationUrl(client, {
      redirect_uri: signIn.redirectUrl, scope: signIn.scopes, state: state.state, nonce: state.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    }).href);
  });

  let finishing = 0;
  router.get('/auth/callback', async (ctx, next) => {
    if (finishing >= callbacksAtOnce) {
      ctx.set('Retry-After', '1');
      throw new ClientError(503, 'sign_in_busy', `${callbacksAtOnce} sign-ins are finishing on this replica, its bound: retry in 1 s`);
    }
    finishing++;
    try {
      await next();
    } finally {
      finishing--;
    }
  }, uses.cookies, uses.pool, async (ctx) => {
    const { config } = ctx.state as SnapshotState;
    const cookie = readCookie(ctx, 'signIn');
    // One callback per sign-in: its cookie goes now, so the same answer played again finds none.
    clearCookie(ctx, 'signIn');
    const started = cookie === undefined ? undefined : decodeSignInState(cookie, Date.now());
    if (started === undefined) throw signInFailed('no sign-in is under way in this browser');
    if (started === 'expired') throw signInFailed(`the sign-in took longer than ${signInLifetimeMs / 60_000} minutes`);
    const client = await configuration(config);
    // The URL the issuer sent the browser to: the registered callback, whatever address this
    // replica was reached at behind a proxy.
    const answer = new URL(signIn.redirectUrl);
    answer.search = ctx.querystring;
    const tokens = await oidc.authorizationCodeGrant(client, answer, {
      pkceCodeVerifier: started.verifier, expectedState: started.state, expectedNonce: started.nonce, idTokenExpected: true,
    }).catch((error: unknown) => {
      if (unreachable(error)) {
        logger.warn({ err: (error as Error).message }, 'the OpenID Connect issuer did not answer the callback\'s code exchange');
        throw new ClientError(503, 'sign_in_unavailable', `the issuer ${issuer?.url ?? ''} does not answer: try again shortly`);
      }
      throw signInFailed(refusal(error));
    });
    const claims = tokens.claims();
    const tenant = claims?.[signIn.tenantClaim];
    if (claims === undefined || !isTenant(tenant)) {
      throw new ClientError(403, 'no_tenant', `the ID token's claim ${signIn.tenantClaim} (OIDC_TENANT_CLAIM) names no tenant: ` +
        'ask the issuer\'s administrator to give this user one');
    }
    const token = await pools.use((pool) => sessions.create(pool, { issuer: claims.iss, subject: claims.sub, tenant }), config);
    writeCookie(ctx, 'session', token, signIn.sessionAbsoluteMs);
    logger.info({ tenant }, 'signed in');
    ctx.body = { tenant };
  });

  router.post('/auth/logout', ...uses.session, async (ctx) => {
    const { config, sessionToken } = ctx.state as SessionState;
    await pools.use((pool) => sessions.end(pool, sessionToken), config);
    clearCookie(ctx, 'session');
    ctx.status = 204;
  });

  router.post('/auth/logout-everywhere', ...uses.session, async (ctx) => {
    const { config, user } = ctx.state as SessionState;
    const ended = await pools.use((pool) => sessions.endAll(pool, user), config);
    clearCookie(ctx, 'session');
    logger.info({ tenant: user.tenant, ended }, 'signed out everywhere');
    ctx.body = { ended };
  });
}
