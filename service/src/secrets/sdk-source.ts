import { createHash } from 'node:crypto';
import {
  groupPath, kvEnvPath, secretGroups, type AppScope, type CredentialsMode, type SecretGroup,
} from '../config/secret-schema.js';
import { buildSnapshot, ConfigError, type ConfigSnapshot, type SecretRead } from '../config/snapshot.js';
import type { Logger } from '../log/logger.js';
import { StartupError } from '../config/startup-error.js';
import { appRoleName, type AppRoleCredentials } from '../vault/approle-credentials.js';
import { retryUntil, type BackoffPolicy } from '../vault/backoff.js';
import type { LoginResult, VaultApi } from '../vault/vault-api.js';
import { describeVaultError, isTransient } from '../vault/vault-error.js';

export interface SdkLoadOptions {
  api: VaultApi;
  credentials: AppRoleCredentials;
  /** The application and environment whose secrets are read (APP_NAME, APP_ENV). */
  scope: AppScope;
  /** How the database credentials are held (DATABASE_CREDENTIALS): a KV secret, or a lease. */
  databaseCredentials?: CredentialsMode;
  logger: Logger;
  /** How long an unreachable (or sealed) Vault is retried before giving up. */
  connectTimeoutMs: number;
  backoff?: BackoffPolicy;
  now?: () => number;
}

export interface SdkLoadResult {
  readonly login: LoginResult;
  readonly snapshot: ConfigSnapshot;
  /** What each group's read returned, for the refresher to start from. */
  readonly reads: Readonly<Record<SecretGroup, SecretRead>>;
}

export type SecretReads = Readonly<Record<SecretGroup, SecretRead>>;

/** One group's read: KV v2, or the database engine's credentials in dynamic mode. */
export function readGroup(
  api: Pick<VaultApi, 'readKv' | 'readDynamic'>, token: string, scope: AppScope, group: SecretGroup, mode: CredentialsMode,
): Promise<SecretRead> {
  const path = groupPath(scope, group, mode);
  return group === 'database' && mode === 'dynamic' ? api.readDynamic(path, token) : api.readKv(path, token);
}

/** The snapshot of a set of reads; its revision is a digest of all of them, so equal reads give equal revisions. */
export function snapshotOf(scope: AppScope, reads: SecretReads, mode: CredentialsMode, loadedAt: number): ConfigSnapshot {
  const ordered = secretGroups.map((group) => [group, reads[group]]);
  const revision = createHash('sha256').update(JSON.stringify(ordered)).digest('hex');
  return buildSnapshot(scope, reads, revision, loadedAt, mode);
}

const defaultBackoff: BackoffPolicy = { baseMs: 250, capMs: 5000 };

/**
 * SDK mode's start: log in with AppRole, keep the token, read every secret
 * path of the environment in parallel, and build the snapshot. Every failure becomes a
 * StartupError naming what is wrong (VAULT_ADDR, the credentials, a path, a policy).
 */
export async function loginAndLoad(options: SdkLoadOptions): Promise<SdkLoadResult> {
  const { api, credentials, scope, logger } = options;
  const mode = options.databaseCredentials ?? 'kv';
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

  const reads = Object.fromEntries(await Promise.all(secretGroups.map(async (group) => {
    try {
      return [group, await retry(() => readGroup(api, login.token, scope, group, mode))] as const;
    } catch (error) {
      throw readError(error, groupPath(scope, group, mode), scope, login, api.addr, options.connectTimeoutMs);
    }
  }))) as SecretReads;
  try {
    return { login, reads, snapshot: snapshotOf(scope, reads, mode, now()) };
  } catch (error) {
    throw new StartupError(invalidSecretsText(error, scope, mode));
  }
}

/** Names the path and key a snapshot failed on: a ConfigError's key starts with the group. */
export function invalidSecretsText(error: unknown, scope: AppScope, mode: CredentialsMode): string {
  if (!(error instanceof ConfigError)) throw error;
  const group = error.key.split('.')[0] ?? '';
  const where = (secretGroups as readonly string[]).includes(group)
    ? groupPath(scope, group as SecretGroup, mode) : 'the secrets';
  return `${where}: ${error.key}: ${error.reason}`;
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

function readError(error: unknown, path: string, scope: AppScope, login: LoginResult, addr: string, timeoutMs: number): Error {
  const failure = describeVaultError(error);
  if (isTransient(error)) return unreachable(addr, timeoutMs, failure.detail, failure.status);
  const dynamic = path.startsWith('database/');
  if (failure.status === 404) {
    return new StartupError(dynamic
      ? `${path} does not exist in Vault at ${addr} (404): is the database engine configured (scripts/database-engine.sh ${scope.appEnv} with APP_NAME=${scope.appName})?`
      : `${path} does not exist in Vault at ${addr} (404)`);
  }
  if (failure.status === 403) {
    return new StartupError(`permission denied reading ${path} (403): the token's policies are ` +
      `[${login.policies.join(', ')}]; policy ${appRoleName(scope.appName, scope.appEnv)} should grant read on ` +
      (dynamic ? path : `${kvEnvPath(scope)}/*`));
  }
  return new StartupError(`reading ${path} failed: ${failure.status ?? ''} ${failure.detail}`.trim());
}
