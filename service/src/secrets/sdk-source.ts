import { createHash } from 'node:crypto';
import { secretGroups, secretPath } from '../config/secret-schema.js';
import { buildSnapshot, ConfigError, type ConfigSnapshot, type SecretRead } from '../config/snapshot.js';
import type { Logger } from '../log/logger.js';
import { StartupError } from '../config/startup-error.js';
import type { AppRoleCredentials } from '../vault/approle-credentials.js';
import { retryUntil, type BackoffPolicy } from '../vault/backoff.js';
import type { LoginResult, VaultApi } from '../vault/vault-api.js';
import { describeVaultError, isTransient } from '../vault/vault-error.js';

export interface SdkLoadOptions {
  api: VaultApi;
  credentials: AppRoleCredentials;
  appEnv: string;
  logger: Logger;
  /** How long an unreachable (or sealed) Vault is retried before giving up. */
  connectTimeoutMs: number;
  backoff?: BackoffPolicy;
  now?: () => number;
}

export interface SdkLoadResult {
  readonly login: LoginResult;
  readonly snapshot: ConfigSnapshot;
}

const defaultBackoff: BackoffPolicy = { baseMs: 250, capMs: 5000 };

/**
 * The seed's start-up steps 2 to 5: log in with AppRole, keep the token, read every secret
 * path of the environment in parallel, and build the snapshot. Every failure becomes a
 * StartupError naming what is wrong (VAULT_ADDR, the credentials, a path, a policy).
 */
export async function loginAndLoad(options: SdkLoadOptions): Promise<SdkLoadResult> {
  const { api, credentials, appEnv, logger } = options;
  const now = options.now ?? Date.now;
  const deadlineMs = now() + options.connectTimeoutMs;
  const retry = <T>(attempt: () => Promise<T>) => retryUntil(attempt, {
    policy: options.backoff ?? defaultBackoff,
    deadlineMs,
    now,
    isRetryable: isTransient,
    onRetry: (error, delayMs) => {
      logger.warn({ vaultAddr: api.addr, problem: describeVaultError(error).detail, retryInMs: delayMs },
        'Vault cannot be reached yet; retrying');
    },
  });

  let login: LoginResult;
  try {
    login = await retry(async () => api.loginAppRole(credentials.roleId, await credentials.secretId(api)));
  } catch (error) {
    throw loginError(error, api.addr, options.connectTimeoutMs);
  }
  logger.info({ policies: login.policies, ttlSeconds: login.ttlSeconds, renewable: login.renewable },
    'logged in to Vault with AppRole');

  const reads = await Promise.all(secretGroups.map(async (group) => {
    const path = secretPath(appEnv, group);
    try {
      return [group, await retry(() => api.readKv(path, login.token))] as const;
    } catch (error) {
      throw readError(error, path, appEnv, login, api.addr, options.connectTimeoutMs);
    }
  }));
  const byGroup: Record<string, SecretRead> = Object.fromEntries(reads);
  const revision = createHash('sha256').update(JSON.stringify(reads)).digest('hex');
  try {
    return { login, snapshot: buildSnapshot(appEnv, byGroup, revision, now()) };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const group = error.key.split('.')[0] ?? '';
    const where = (secretGroups as readonly string[]).includes(group)
      ? secretPath(appEnv, group as (typeof secretGroups)[number]) : 'the secrets';
    throw new StartupError(`${where}: ${error.key}: ${error.reason}`);
  }
}

function unreachable(addr: string, timeoutMs: number, detail: string, status: number | undefined): StartupError {
  return status === undefined
    ? new StartupError(`cannot reach Vault at ${addr} (VAULT_ADDR) within ${timeoutMs} ms (VAULT_CONNECT_TIMEOUT_MS): ${detail}`)
    : new StartupError(`Vault at ${addr} (VAULT_ADDR) could not serve within ${timeoutMs} ms (VAULT_CONNECT_TIMEOUT_MS): ` +
      `status ${status}, ${detail}`);
}

function loginError(error: unknown, addr: string, timeoutMs: number): Error {
  if (error instanceof StartupError) return error;
  const failure = describeVaultError(error);
  if (isTransient(error)) return unreachable(addr, timeoutMs, failure.detail, failure.status);
  if (failure.status === 400) {
    return new StartupError(`AppRole login refused by Vault at ${addr}: ${failure.detail}. The role id ` +
      '(VAULT_ROLE_ID or VAULT_ROLE_ID_FILE) is wrong, or the secret id is wrong, expired or used up');
  }
  if (failure.status === 403) {
    return new StartupError(`AppRole login denied by Vault at ${addr} (403 ${failure.detail}): is AppRole enabled ` +
      'at auth/approle? Repeated failed logins also lock a role for a while');
  }
  return new StartupError(`AppRole login at ${addr} failed: ${failure.status ?? ''} ${failure.detail}`.trim());
}

function readError(error: unknown, path: string, appEnv: string, login: LoginResult, addr: string, timeoutMs: number): Error {
  const failure = describeVaultError(error);
  if (isTransient(error)) return unreachable(addr, timeoutMs, failure.detail, failure.status);
  if (failure.status === 404) return new StartupError(`${path} does not exist in Vault at ${addr} (404)`);
  if (failure.status === 403) {
    return new StartupError(`permission denied reading ${path} (403): the token's policies are ` +
      `[${login.policies.join(', ')}]; policy saas-app-${appEnv} should grant read on secret/data/saas-project/${appEnv}/*`);
  }
  return new StartupError(`reading ${path} failed: ${failure.status ?? ''} ${failure.detail}`.trim());
}
