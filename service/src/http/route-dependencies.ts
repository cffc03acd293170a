import type { Settings } from '../config/settings.js';
import { ProjectStore } from '../db/projects.js';
import { SessionStore } from '../db/sessions.js';
import { WebhookOutbox } from '../db/webhook-outbox.js';
import { OidcIssuer } from '../sign-in/oidc-issuer.js';
import type { SignInSettings } from './auth-routes.js';
import { TenantRate } from './tenant-rate.js';
import { TrustedProxies } from './trusted-proxies.js';

/** What the routes take from the settings, built in one place for the service, its tests and the benchmarks. */
export interface RouteDependencies {
  projects: ProjectStore;
  /** Where each create's webhook waits for its delivery; absent without WEBHOOK_URL. */
  outbox?: WebhookOutbox;
  sessions: SessionStore;
  tenantRate: TenantRate;
  trustedProxies: TrustedProxies;
  issuer?: OidcIssuer;
  signIn: SignInSettings;
  plainHttpCookies: boolean;
}

export function routeDependencies(settings: Settings): RouteDependencies {
  const dev = settings.appEnv === 'dev';
  const outbox = settings.webhookUrl === '' ? undefined : new WebhookOutbox();
  return {
    projects: new ProjectStore({ quota: settings.tenantProjectQuota, events: outbox }),
    ...(outbox === undefined ? {} : { outbox }),
    sessions: new SessionStore({ idleMs: settings.sessionIdleTimeoutMs, absoluteMs: settings.sessionAbsoluteTimeoutMs }),
    tenantRate: new TenantRate({ perSecond: settings.tenantRequestsPerSecond }),
    trustedProxies: new TrustedProxies(settings.trustedProxies),
    ...(settings.oidcIssuerUrl === '' ? {} : {
      issuer: new OidcIssuer({
        url: settings.oidcIssuerUrl, allowHttp: dev, timeoutMs: settings.vaultRequestTimeoutMs, caFile: settings.oidcCaFile,
      }),
    }),
    signIn: {
      redirectUrl: settings.oidcRedirectUrl, scopes: settings.oidcScopes, tenantClaim: settings.oidcTenantClaim,
      sessionAbsoluteMs: settings.sessionAbsoluteTimeoutMs,
    },
    plainHttpCookies: dev,
  };
}
