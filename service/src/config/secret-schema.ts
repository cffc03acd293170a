import convict from 'convict';
import type { SecretCatalogue, SecretKeySpec } from './secret-catalogue.js';
import { secretCatalogue, secretGroups, type SecretGroup, type Secrets } from './secret-catalogue.generated.js';

/**
 * The secret groups the service reads, each a KV v2 path
 * `secret/data/<app>-project/<env>/<group>`, and the keys each must hold: all declared in
 * agent-config/secret-catalogue.json (generated into secret-catalogue.generated.ts). The key
 * names are Vault's own, so a snapshot is the KV data as it is, without a mapping layer.
 */
export { secretGroups, type SecretGroup, type Secrets };

/**
 * Whose secrets: the application (APP_NAME, default saas) and its environment (APP_ENV).
 * Every Vault name derives from both as scripts/lib/app-name.sh derives them; the settings
 * are one.
 */
export interface AppScope {
  readonly appName: string;
  readonly appEnv: string;
}

/** The KV v2 data path of the environment's groups: secret/data/<app>-project/<env>. */
export function kvEnvPath({ appName, appEnv }: AppScope): string {
  return `secret/data/${appName}-project/${appEnv}`;
}

export function secretPath(scope: AppScope, group: SecretGroup): string {
  return `${kvEnvPath(scope)}/${group}`;
}

/**
 * How the service holds its PostgreSQL credentials: `kv`, a static username and password at
 * secretPath(scope, 'database') that scripts/rotate-db-password.sh rotates; or `dynamic`, a
 * short-lived user Vault's database engine issues under a lease (databaseCredsPath).
 */
export type CredentialsMode = 'kv' | 'dynamic';

/**
 * Where the database secrets engine issues the app's users (scripts/database-engine.sh): the
 * database role has the name of the AppRole role and the policy, <app>-app-<env>.
 */
export function databaseCredsPath({ appName, appEnv }: AppScope): string {
  return `database/creds/${appName}-app-${appEnv}`;
}

/** Where each group is read from in `mode`: only the database group differs. */
export function groupPath(scope: AppScope, group: SecretGroup, mode: CredentialsMode): string {
  return group === 'database' && mode === 'dynamic' ? databaseCredsPath(scope) : secretPath(scope, group);
}

// Messages say what is wrong with a value and never show it: convict prefixes the key.
function stringOf(minLength: number): (value: unknown) => void {
  return (value) => {
    if (typeof value !== 'string' || value.length < minLength) {
      throw new Error(minLength <= 1 ? 'must be a non-empty string' : `must be a string of at least ${minLength} characters`);
    }
  };
}

function listOf(minLength: number): (value: unknown) => void {
  return (value) => {
    if (!Array.isArray(value) || value.length === 0) throw new Error('must be a non-empty list of keys');
    for (const key of value) {
      if (typeof key !== 'string' || key.length < minLength) {
        throw new Error(`every key must be a string of at least ${minLength} characters`);
      }
    }
  };
}

function keySchema(spec: SecretKeySpec) {
  return spec.type === 'string-list'
    ? { doc: spec.doc, format: listOf(spec.minLength), default: [] as string[], sensitive: true }
    : { doc: spec.doc, format: stringOf(spec.minLength), default: '', sensitive: true };
}

/**
 * The convict schema of a catalogue. No `env` and no `arg` on any key: a secret can only
 * come from Vault, never the environment.
 */
export function schemaOf(catalogue: SecretCatalogue) {
  return Object.fromEntries(Object.entries(catalogue.groups).map(([group, spec]) => [
    group, Object.fromEntries(Object.entries(spec.keys).map(([key, keySpec]) => [key, keySchema(keySpec)])),
  ]));
}

export const secretSchema = schemaOf(secretCatalogue);

/**
 * Validates one set of secrets with a fresh convict instance: `load()` merges into an
 * instance, so reusing one would keep keys a newer render removed. Unknown keys fail.
 */
export function validateSecrets(data: Record<SecretGroup, Record<string, unknown>>): Secrets {
  // The schema and the Secrets type are generated from the same catalogue, and strict
  // validation leaves only what the schema declares: the cast is what convict cannot infer.
  const config = convict(secretSchema as convict.Schema<Secrets>, { env: {}, args: [] });
  config.load(data);
  config.validate({ allowed: 'strict' });
  return config.getProperties();
}
