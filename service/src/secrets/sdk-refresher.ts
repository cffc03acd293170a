import { performance } from 'node:perf_hooks';
import { groupPath, secretGroups, type AppScope, type CredentialsMode, type SecretGroup } from '../config/secret-schema.js';
import { sourceVersions, type ConfigSnapshot, type SecretRead } from '../config/snapshot.js';
import type { SnapshotHolder } from '../config/snapshot-holder.js';
import type { Logger } from '../log/logger.js';
import { CheckLoop } from '../vault/check-loop.js';
import type { VaultApi } from '../vault/vault-api.js';
import { failureText } from '../vault/vault-error.js';
import { invalidSecretsText, readGroup, snapshotOf, type SecretReads } from './sdk-source.js';

export interface SdkRefresherOptions {
  api: Pick<VaultApi, 'readKv' | 'readDynamic'>;
  /** The application and environment whose secrets are read (APP_NAME, APP_ENV). */
  scope: AppScope;
  credentials: CredentialsMode;
  holder: SnapshotHolder;
  logger: Logger;
  /** The service's current token (it changes at each new login). */
  token: () => string;
  /** How often the KV paths are read again (SECRETS_REREAD_INTERVAL_MS). */
  intervalMs: number;
  /** What start-up read: the snapshot in the holder was made from these. */
  initial: SecretReads;
  now?: () => number;
  wallClock?: () => number;
}

/**
 * SDK mode's answer to the agent's re-renders: every KV path is read again at an interval,
 * and the database credentials are replaced when the lease's watcher asks. A change becomes a
 * new snapshot swapped whole, exactly as a new render does in agent mode; a read that fails
 * or a secret that does not validate is logged and leaves the last good snapshot in place.
 */
export class SdkRefresher {
  readonly #options: Required<SdkRefresherOptions>;
  readonly #loop: CheckLoop;
  #reads: Record<SecretGroup, SecretRead>;
  /** The last refused set, so a bad secret is logged once, not at every interval. */
  #lastRefused: string | undefined;

  constructor(options: SdkRefresherOptions) {
    this.#options = { now: () => performance.now(), wallClock: Date.now, ...options };
    this.#reads = { ...options.initial };
    this.#loop = new CheckLoop(async () => {
      await this.#rereadKv();
      return this.#options.intervalMs;
    }, this.#options.now);
  }

  /** The first re-read comes one interval after start-up's read. */
  start(): Promise<void> {
    return this.#loop.start(this.#options.intervalMs);
  }

  stop(): Promise<void> {
    return this.#loop.stop();
  }

  /**
   * Fetches new database credentials and swaps them in. Rejects, leaving the snapshot as it
   * is, when Vault refuses or the answer does not validate: the lease's watcher decides what that means.
   */
  async replaceCredentials(): Promise<void> {
    const { api, scope, credentials, token } = this.#options;
    const read = await readGroup(api, token(), scope, 'database', credentials);
    const reads = { ...this.#reads, database: read };
    let snapshot: ConfigSnapshot;
    try {
      snapshot = snapshotOf(scope, reads, credentials, this.#options.wallClock());
    } catch (error) {
      throw new Error(invalidSecretsText(error, scope, credentials), { cause: error });
    }
    this.#reads = reads;
    this.#swap(snapshot, 'new database credentials loaded from Vault');
  }

  async #rereadKv(): Promise<void> {
    const { api, scope, credentials, token, logger } = this.#options;
    // Dynamic credentials are the lease's watcher's: reading them here would issue a user per interval.
    const groups = secretGroups.filter((group) => !(group === 'database' && credentials === 'dynamic'));
    const results = await Promise.all(groups.map(async (group) => {
      try {
        return [group, await readGroup(api, token(), scope, group, credentials)] as const;
      } catch (error) {
        logger.warn({ path: groupPath(scope, group, credentials), problem: failureText(error) },
          'could not read a secret again; keeping the last good configuration');
        return undefined;
      }
    }));
    const reads = { ...this.#reads };
    for (const result of results) if (result !== undefined) reads[result[0]] = result[1];
    let snapshot: ConfigSnapshot;
    try {
      snapshot = snapshotOf(scope, reads, credentials, this.#options.wallClock());
    } catch (error) {
      const problem = invalidSecretsText(error, scope, credentials);
      if (problem !== this.#lastRefused) {
        this.#lastRefused = problem;
        logger.error({ problem, keptRevision: this.#options.holder.current?.revision },
          'secrets read again from Vault refused; keeping the last good configuration');
      }
      return;
    }
    this.#lastRefused = undefined;
    this.#reads = reads;
    if (snapshot.revision !== this.#options.holder.current?.revision) this.#swap(snapshot, 'secrets reloaded from Vault');
  }

  #swap(snapshot: ConfigSnapshot, message: string): void {
    this.#options.holder.swap(snapshot);
    this.#options.logger.info({ versions: sourceVersions(snapshot) }, message);
  }
}
