import { rereadIntervalMs } from '../config/settings.js';
import { sourceVersions } from '../config/snapshot.js';
import { StartupError } from '../config/startup-error.js';
import { AppRoleCredentials, appRoleName } from '../vault/approle-credentials.js';
import { LifetimeWatcher } from '../vault/lifetime-watcher.js';
import { loginVouched, ServiceToken } from '../vault/service-token.js';
import type { ModeContext, SecretsSource } from './agent-mode.js';
import { SdkRefresher } from './sdk-refresher.js';
import { loginAndLoad } from './sdk-source.js';

/**
 * SDK mode: the credentials leave the environment, an AppRole login, every secret read; then
 * the service watches and renews its own token and reads KV again on the agent's render
 * interval.
 */
export async function sdkMode({ settings, env, api, holder, report, rules, logger, started }: ModeContext): Promise<SecretsSource> {
  // Step 1: the credentials leave the environment before anything else happens.
  const credentials = await AppRoleCredentials.take(env, appRoleName(settings.appName, settings.appEnv), {
    wrappedOnly: settings.appEnv === 'prod',
  });
  if (settings.vaultAddr === '') throw new StartupError('VAULT_ADDR is not set: SDK mode needs the address of Vault');
  const { snapshot, login, reads } = await loginAndLoad({
    api, credentials, scope: settings, databaseCredentials: settings.databaseCredentials, logger,
    connectTimeoutMs: settings.vaultConnectTimeoutMs,
  });
  holder.swap(snapshot);
  logger.info({ versions: sourceVersions(snapshot) }, 'secrets loaded from Vault');
  const serviceToken = new ServiceToken({
    api, initial: login, logger,
    login: async () => api.loginAppRole(credentials.roleId, await credentials.secretId(api)),
  });
  const token = new LifetimeWatcher({ strategy: serviceToken, report, logger, rules });
  started.add('token checks', () => token.stop());
  // After the pools close: revoking the token revokes the database user, whose sessions then end.
  started.add('token revocation', () => serviceToken.revoke());
  const refresher = new SdkRefresher({
    api, scope: settings, credentials: settings.databaseCredentials, holder, logger,
    token: () => serviceToken.token, intervalMs: rereadIntervalMs(settings), initial: reads,
  });
  started.add('secret re-reads', () => refresher.stop());
  return {
    token,
    currentToken: () => Promise.resolve(serviceToken.token),
    replaceCredentials: () => refresher.replaceCredentials(),
    onNewLogin: (listener) => serviceToken.onNewLogin(listener),
    fileStats: () => null,
    async start() {
      // The start-up login verified the token: the first wake is its renewal.
      await token.start(loginVouched(login));
      await refresher.start();
    },
  };
}
