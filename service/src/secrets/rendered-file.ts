import { createHash } from 'node:crypto';
import type { AppScope, CredentialsMode } from '../config/secret-schema.js';
import { buildSnapshot, ConfigError, type ConfigSnapshot, type LeaseRead, type SecretRead } from '../config/snapshot.js';

/** Far above any real render; a larger file is refused before it is parsed. */
export const maxRenderedFileBytes = 1024 * 1024;

/** A rendered file that cannot become a snapshot: names the file and the failing key, never a value. */
export class SecretsFileError extends Error {
  constructor(readonly file: string, readonly key: string | undefined, readonly reason: string) {
    super(`${file}: ${key === undefined ? '' : `${key}: `}${reason}`);
    this.name = 'SecretsFileError';
  }
}

export function contentRevision(content: Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function parseLease(file: string, group: string, lease: unknown): LeaseRead | undefined {
  if (lease === undefined) return undefined;
  if (!isObject(lease)) throw new SecretsFileError(file, `${group}.lease`, 'is not an object');
  const { id, duration, renewable } = lease;
  if (typeof id !== 'string') throw new SecretsFileError(file, `${group}.lease.id`, 'is missing or not a string');
  if (typeof duration !== 'number') throw new SecretsFileError(file, `${group}.lease.duration`, 'is missing or not a number');
  if (typeof renewable !== 'boolean') throw new SecretsFileError(file, `${group}.lease.renewable`, 'is missing or not true/false');
  return { id, durationSeconds: duration, renewable };
}

/**
 * Turns the agent's rendered file (agent-config/secrets.json.ctmpl) into a snapshot:
 * `{ "<group>": { "path": ..., "version": N, "data": {...} }, ... }`, where a dynamic secret
 * has `"lease": { "id": ..., "duration": seconds, "renewable": bool }` instead of a version.
 */
export function parseRenderedFile(
  file: string, content: Buffer, scope: AppScope, loadedAt: number, mode: CredentialsMode = 'kv',
): ConfigSnapshot {
  if (content.length === 0) throw new SecretsFileError(file, undefined, 'is empty');
  if (content.length > maxRenderedFileBytes) {
    throw new SecretsFileError(file, undefined, `is ${content.length} bytes, over the ${maxRenderedFileBytes}-byte limit`);
  }
  let document: unknown;
  try {
    document = JSON.parse(content.toString('utf8'));
  } catch {
    // The parser's own message quotes the text around the error: it could quote a secret.
    throw new SecretsFileError(file, undefined, 'is not valid JSON (a partial or corrupt render)');
  }
  if (!isObject(document)) throw new SecretsFileError(file, undefined, 'is not a JSON object');

  const reads: Record<string, SecretRead> = {};
  for (const [group, entry] of Object.entries(document)) {
    if (!isObject(entry)) throw new SecretsFileError(file, group, 'is not an object');
    const { path, version, data } = entry;
    if (typeof path !== 'string') throw new SecretsFileError(file, `${group}.path`, 'is missing or not a string');
    const lease = parseLease(file, group, entry.lease);
    if (lease === undefined && typeof version !== 'number') {
      throw new SecretsFileError(file, `${group}.version`, 'is missing or not a number');
    }
    if (!isObject(data)) throw new SecretsFileError(file, `${group}.data`, 'is missing or not an object');
    reads[group] = { path, ...(typeof version === 'number' ? { version } : {}), ...(lease === undefined ? {} : { lease }), data };
  }
  try {
    return buildSnapshot(scope, reads, contentRevision(content), loadedAt, mode);
  } catch (error) {
    if (error instanceof ConfigError) throw new SecretsFileError(file, error.key, error.reason);
    throw error;
  }
}
