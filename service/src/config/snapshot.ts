import {
  groupPath, secretGroups, validateSecrets, type AppScope, type CredentialsMode, type SecretGroup, type Secrets,
} from './secret-schema.js';

/** The lease Vault put on a dynamic secret: renewing, looking up or revoking it goes by `id`. */
export interface LeaseRead {
  readonly id: string;
  /** The TTL Vault gave when it issued (or last renewed) the secret. */
  readonly durationSeconds: number;
  readonly renewable: boolean;
}

/** One read: a KV v2 secret (with its version) or a dynamic one (with its lease), and its data. */
export interface SecretRead {
  readonly path: string;
  readonly version?: number;
  readonly lease?: LeaseRead;
  readonly data: Record<string, unknown>;
}

export interface SecretSource {
  readonly group: SecretGroup;
  readonly path: string;
  /** The KV version; null for a dynamic secret, which has a lease instead. */
  readonly version: number | null;
}

/** The database credentials' lease (dynamic mode). Its id is for Vault calls, never for logs. */
export interface DatabaseLease extends LeaseRead {
  readonly path: string;
}

/** An immutable, validated view of every secret, swapped whole when a new one arrives. */
export interface ConfigSnapshot {
  readonly secrets: Secrets;
  readonly sources: readonly SecretSource[];
  /** Milliseconds since the epoch at which this snapshot was built. */
  readonly loadedAt: number;
  /** Identifies the content: equal revisions mean equal secrets. */
  readonly revision: string;
  /** The lease of the database credentials in dynamic mode; null in kv mode. */
  readonly lease: DatabaseLease | null;
}

/** A configuration that cannot become a snapshot. `key` names what failed; no value is ever in it. */
export class ConfigError extends Error {
  constructor(readonly key: string, readonly reason: string) {
    super(`${key}: ${reason}`);
    this.name = 'ConfigError';
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

function checkLease(group: string, lease: LeaseRead | undefined): LeaseRead {
  if (lease === undefined) throw new ConfigError(`${group}.lease`, 'is missing: a dynamic secret comes with a lease');
  if (typeof lease.id !== 'string' || lease.id === '') throw new ConfigError(`${group}.lease.id`, 'must be a non-empty string');
  if (!Number.isSafeInteger(lease.durationSeconds) || lease.durationSeconds < 1) {
    throw new ConfigError(`${group}.lease.duration`, 'must be a positive whole number of seconds');
  }
  if (typeof lease.renewable !== 'boolean') throw new ConfigError(`${group}.lease.renewable`, 'must be true or false');
  return lease;
}

/**
 * Checks every group's path and its version (KV) or lease (the database group in dynamic
 * mode), validates the secrets, and freezes the result.
 */
export function buildSnapshot(
  scope: AppScope,
  reads: Partial<Record<string, SecretRead>>,
  revision: string,
  loadedAt: number,
  mode: CredentialsMode = 'kv',
): ConfigSnapshot {
  const data = {} as Record<SecretGroup, Record<string, unknown>>;
  const sources: SecretSource[] = [];
  let lease: DatabaseLease | null = null;
  for (const group of secretGroups) {
    const read = reads[group];
    if (read === undefined) throw new ConfigError(group, 'missing');
    const expected = groupPath(scope, group, mode);
    if (read.path !== expected) {
      const hint = group === 'database' ? ' (DATABASE_CREDENTIALS is ' + mode + ' here: the agent and the service must agree)' : '';
      throw new ConfigError(`${group}.path`, `is ${read.path}, expected ${expected}${hint}`);
    }
    if (group === 'database' && mode === 'dynamic') {
      const { id, durationSeconds, renewable } = checkLease(group, read.lease);
      lease = { path: read.path, id, durationSeconds, renewable };
      sources.push({ group, path: read.path, version: null });
    } else {
      const version = read.version;
      if (version === undefined || !Number.isSafeInteger(version) || version < 1) {
        throw new ConfigError(`${group}.version`, 'must be a positive whole number');
      }
      sources.push({ group, path: read.path, version });
    }
    data[group] = read.data;
  }
  const unknown = Object.keys(reads).filter((group) => !(secretGroups as readonly string[]).includes(group));
  if (unknown.length > 0) throw new ConfigError(unknown.join(', '), 'not a secret group the service knows');

  let secrets: Secrets;
  try {
    secrets = validateSecrets(data);
  } catch (error) {
    throw convictError((error as Error).message);
  }
  return deepFreeze({ secrets, sources, loadedAt, revision, lease });
}

/**
 * convict reports one problem a line, each led by its key ("app.session_keys: must be ...")
 * and never with the value of a sensitive key. Keep the first key for counting, all lines
 * for the message.
 */
function convictError(message: string): ConfigError {
  const problems = message.split('\n').filter((line) => line !== '').map((line) => {
    const undeclared = /^configuration param '([^']+)' not declared in the schema$/.exec(line);
    if (undeclared?.[1] !== undefined) return { key: undeclared[1], reason: 'is not a key the service knows' };
    const colon = line.indexOf(': ');
    return colon > 0 ? { key: line.slice(0, colon), reason: line.slice(colon + 2) } : { key: 'secrets', reason: line };
  });
  const [first, ...rest] = problems;
  if (first === undefined) return new ConfigError('secrets', 'invalid');
  const more = rest.map((p) => `; ${p.key}: ${p.reason}`).join('');
  return new ConfigError(first.key, `${first.reason}${more}`);
}

/** What log lines say was loaded: each path's KV version, or `lease` for a dynamic secret. */
export function sourceVersions(snapshot: ConfigSnapshot): Record<string, number | 'lease'> {
  return Object.fromEntries(snapshot.sources.map((s) => [s.path, s.version ?? 'lease']));
}
