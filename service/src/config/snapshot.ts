import { secretGroups, secretPath, validateSecrets, type SecretGroup, type Secrets } from './secret-schema.js';

/** One KV v2 read: the path, the version Vault returned, and its data. */
export interface SecretRead {
  readonly path: string;
  readonly version: number;
  readonly data: Record<string, unknown>;
}

export interface SecretSource {
  readonly group: SecretGroup;
  readonly path: string;
  readonly version: number;
}

/** An immutable, validated view of every secret, swapped whole when a new one arrives. */
export interface ConfigSnapshot {
  readonly secrets: Secrets;
  readonly sources: readonly SecretSource[];
  /** Milliseconds since the epoch at which this snapshot was built. */
  readonly loadedAt: number;
  /** Identifies the content: equal revisions mean equal secrets. */
  readonly revision: string;
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

/** Checks every group's path and version, validates the secrets, and freezes the result. */
export function buildSnapshot(
  appEnv: string,
  reads: Partial<Record<string, SecretRead>>,
  revision: string,
  loadedAt: number,
): ConfigSnapshot {
  const data = {} as Record<SecretGroup, Record<string, unknown>>;
  const sources: SecretSource[] = [];
  for (const group of secretGroups) {
    const read = reads[group];
    if (read === undefined) throw new ConfigError(group, 'missing');
    const expected = secretPath(appEnv, group);
    if (read.path !== expected) throw new ConfigError(`${group}.path`, `is ${read.path}, expected ${expected}`);
    if (!Number.isSafeInteger(read.version) || read.version < 1) {
      throw new ConfigError(`${group}.version`, 'must be a positive whole number');
    }
    data[group] = read.data;
    sources.push({ group, path: read.path, version: read.version });
  }
  const unknown = Object.keys(reads).filter((group) => !(secretGroups as readonly string[]).includes(group));
  if (unknown.length > 0) throw new ConfigError(unknown.join(', '), 'not a secret group the service knows');

  let secrets: Secrets;
  try {
    secrets = validateSecrets(data);
  } catch (error) {
    throw convictError((error as Error).message);
  }
  return deepFreeze({ secrets, sources, loadedAt, revision });
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
