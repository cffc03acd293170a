import Router from '@koa/router';
import Koa from 'koa';
import type { SnapshotHolder } from '../config/snapshot-holder.js';
import type { Logger } from '../log/logger.js';
import { apiRoutes, type ApiDependencies } from './api-routes.js';
import { authRoutes, type SignInSettings } from './auth-routes.js';
import type { OidcIssuer } from '../sign-in/oidc-issuer.js';
import { DatabaseReadiness } from './database-readiness.js';
import { DrainState, drainStep } from './drain.js';
import { errorStep } from './errors.js';
import { requestIdStep } from './request-id.js';
import { requestLogStep } from './request-log.js';
import { runSteps, type RequestStep } from './request-steps.js';
import { probeRoutes, probeStep } from './probes.js';
import { routeUses } from './route-uses.js';
import { securityHeadersStep } from './security-headers.js';
import { snapshotStep } from './snapshot-step.js';
import { gateStep, type TrafficGate } from './traffic-gate.js';
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


/**
 * The Koa application: one middleware runs the steps every request passes (serviceChain),
 * then one router, where each route mounts only what it uses (route-uses.ts).
 */
export function createApp(deps: AppDependencies): Koa {
  const app = new Koa();
  const { steps, router } = serviceChain(deps);
  app.use(runSteps(steps));
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

/**
 * createApp's steps, in order, and its routes (bench/overhead-chain.ts runs the first k steps).
 * A request id first, so every log line of the request carries it; errors as JSON; a log line
 * per request; helmet's headers; the drain (/readyz 503 once the shutdown starts); the traffic
 * gate; one snapshot per request (taken once, so a rotation mid-request cannot mix configs);
 * then a GET probe's answer, without the router.
 */
export function serviceChain(deps: AppDependencies): { steps: readonly RequestStep[]; router: Router } {
  const { holder, gate, logger, retryAfterSeconds, drain = new DrainState(), trustedProxies = new TrustedProxies(), plainHttpCookies } = deps;
  const router = new Router();

  const database = new DatabaseReadiness(deps.pools);
  probeRoutes(router, database);
  const uses = routeUses({ ...deps, trustedProxies, plainHttpCookies });
  authRoutes(router, deps, uses);
  apiRoutes(router, deps, uses);

  const steps: readonly RequestStep[] = [
    requestIdStep(),
    errorStep(logger, () => { database.failed(); }),
    requestLogStep(logger),
    securityHeadersStep(),
    drainStep(drain),
    gateStep(gate, retryAfterSeconds),
    snapshotStep(holder),
    probeStep(database),
  ];
  return { steps, router };
}
