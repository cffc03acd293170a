import convict from 'convict';

/**
 * The secret groups the service reads, each a KV v2 path
 * `secret/data/saas-project/<env>/<group>`, and the keys each must hold. The key names are
 * Vault's own, so a snapshot is the KV data as it is, without a mapping layer.
 */
export const secretGroups = ['database', 'api-keys', 'app'] as const;
export type SecretGroup = (typeof secretGroups)[number];

export interface Secrets {
  readonly database: { readonly username: string; readonly password: string };
  readonly 'api-keys': { readonly webhook_signing_key: string };
  /** Newest first: the first key signs, every key verifies (rotation keeps old cookies valid). */
  readonly app: { readonly session_keys: readonly string[] };
}

export function secretPath(appEnv: string, group: SecretGroup): string {
  return `secret/data/saas-project/${appEnv}/${group}`;
}

/**
 * How the service holds its PostgreSQL credentials: `kv`, a static username and password at
 * secretPath(env, 'database') that scripts/rotate-db-password.sh rotates; or `dynamic`, a
 * short-lived user Vault's database engine issues under a lease (databaseCredsPath).
 */
export type CredentialsMode = 'kv' | 'dynamic';

/** Where the database secrets engine issues the app's users (scripts/database-engine.sh). */
export function databaseCredsPath(appEnv: string): string {
  return `database/creds/saas-app-${appEnv}`;
}

/** Where each group is read from in `mode`: only the database group differs. */
export function groupPath(appEnv: string, group: SecretGroup, mode: CredentialsMode): string {
  return group === 'database' && mode === 'dynamic' ? databaseCredsPath(appEnv) : secretPath(appEnv, group);
}

// Messages say what is wrong with a value and never show it: convict prefixes the key.
convict.addFormats({
  'secret-string': {
    validate(value: unknown) {
      if (typeof value !== 'string' || value.length === 0) throw new Error('must be a non-empty string');
    },
  },
  'strong-key': {
    validate(value: unknown) {
      if (typeof value !== 'string' || value.length < 32) {
        throw new Error('must be a string of at least 32 characters');
      }
    },
  },
  'strong-key-list': {
    validate(value: unknown) {
      if (!Array.isArray(value) || value.length === 0) throw new Error('must be a non-empty list of keys');
      for (const key of value) {
        if (typeof key !== 'string' || key.length < 32) {
          throw new Error('every key must be a string of at least 32 characters');
        }
      }
    },
  },
});

/** No `env` and no `arg` on any key: a secret can only come from Vault, never the environment. */
export const secretSchema = {
  database: {
    username: { doc: 'PostgreSQL user', format: 'secret-string', default: '', sensitive: true },
    password: { doc: 'PostgreSQL password', format: 'secret-string', default: '', sensitive: true },
  },
  'api-keys': {
    webhook_signing_key: {
      doc: 'HMAC key signing outbound webhooks', format: 'strong-key', default: '', sensitive: true,
    },
  },
  app: {
    session_keys: {
      doc: 'session cookie keys, newest first', format: 'strong-key-list', default: [] as string[], sensitive: true,
    },
  },
};

/**
 * Validates one set of secrets with a fresh convict instance: `load()` merges into an
 * instance, so reusing one would keep keys a newer render removed. Unknown keys fail.
 */
export function validateSecrets(data: Record<SecretGroup, Record<string, unknown>>): Secrets {
  const config = convict(secretSchema, { env: {}, args: [] });
  config.load(data);
  config.validate({ allowed: 'strict' });
  return config.getProperties();
}
