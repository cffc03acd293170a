import { open, stat } from 'node:fs/promises';
import type { AppScope, CredentialsMode } from '../config/secret-schema.js';
import { sourceVersions, type ConfigSnapshot } from '../config/snapshot.js';
import type { SnapshotHolder } from '../config/snapshot-holder.js';
import type { Logger } from '../log/logger.js';
import { coalesce } from '../async/coalesce.js';
import type { FileWatch, WatchFile } from './file-watch.js';
import { contentRevision, maxRenderedFileBytes, parseRenderedFile, SecretsFileError } from './rendered-file.js';

export interface AgentFileSourceOptions {
  /** The file Vault Agent renders (SECRETS_FILE). */
  file: string;
  /** The application and environment whose paths the file must hold (APP_NAME, APP_ENV). */
  scope: AppScope;
  /** What the database group must hold: a KV version, or a lease (DATABASE_CREDENTIALS). */
  credentials?: CredentialsMode;
  holder: SnapshotHolder;
  logger: Logger;
  watchFile: WatchFile;
  /** Quiet time after the last event before the file is read: one render, one reload. */
  debounceMs?: number;
  /** Interval of the stat check that catches a change whose event was lost. */
  backstopMs?: number;
  now?: () => number;
}

export interface AgentFileStats {
  /** Snapshots swapped in from the file. */
  reloads: number;
  /** Distinct bad files (missing, partial, unparsable, invalid) that were refused. */
  rejected: number;
  /** Reads that found the content already in use (or already refused): the agent rewrote it as it was. */
  unchanged: number;
  lastError: string | undefined;
}

const missing = 'missing';

/**
 * Keeps a SnapshotHolder in step with the agent's rendered file. Every event for the file's
 * name (debounced) and every change the periodic stat check sees leads to one read of the
 * whole file. New content that validates is swapped in; content already in use is only
 * counted (Vault Agent may write a render identical to the last); anything else is logged
 * with the file and the failing key, counted, and leaves the last good snapshot in place.
 */
export class AgentFileSource {
  readonly #options: Required<AgentFileSourceOptions>;
  #stats: AgentFileStats = { reloads: 0, rejected: 0, unchanged: 0, lastError: undefined };
  #backstop: NodeJS.Timeout | undefined;
  #initial: NodeJS.Timeout | undefined;
  #watch: FileWatch | undefined;
  /** What the last read found: a content revision, or `missing`. Equal means nothing to do. */
  #lastSeen: string | undefined;
  /** inode, size and mtime of what was last read, for the backstop. */
  #lastStat: string | undefined;
  readonly #reader = coalesce(() => this.#readOnce());

  constructor(options: AgentFileSourceOptions) {
    this.#options = { debounceMs: 25, backstopMs: 2000, now: Date.now, credentials: 'kv', ...options };
  }

  start(): void {
    if (this.#watch !== undefined) return;
    const { file, logger, watchFile, debounceMs, backstopMs } = this.#options;
    this.#watch = watchFile(file, {
      onChange: () => { void this.check(); },
      onError: (error) => { logger.warn({ file, err: error.message }, 'watching the secrets folder failed; the periodic check goes on'); },
      debounceMs,
    });
    this.#backstop = setInterval(() => { void this.#backstopCheck(); }, backstopMs);
    this.#backstop.unref();
    this.#initial = setTimeout(() => { void this.check(); }, debounceMs);
  }

  async stop(): Promise<void> {
    clearTimeout(this.#initial);
    clearInterval(this.#backstop);
    const watch = this.#watch;
    this.#watch = undefined;
    await watch?.close();
    await this.#reader.idle();
  }

  /**
   * Settles once the watch on the file is in place: a change made after it is seen at once,
   * not at the next periodic check. Settles at once when not started.
   */
  watching(): Promise<void> {
    return this.#watch?.ready ?? Promise.resolve();
  }

  stats(): Readonly<AgentFileStats> {
    return { ...this.#stats };
  }

  /**
   * Reads the file now. Resolves once that read, and any trigger that arrived while it ran,
   * has been applied or refused.
   */
  check(): Promise<void> {
    return this.#reader.run();
  }

  /**
   * Resolves with the first valid snapshot, or rejects after `timeoutMs` with an error that
   * names the file and what was wrong with it.
   */
  firstSnapshot(timeoutMs: number): Promise<ConfigSnapshot> {
    const { holder, file } = this.#options;
    const current = holder.current;
    if (current !== undefined) return Promise.resolve(current);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        unsubscribe();
        const problem = this.#stats.lastError ?? `${file}: no render seen`;
        reject(new Error(`no valid secrets in ${file} within ${timeoutMs} ms (SECRETS_WAIT_MS); last problem: ${problem}`));
      }, timeoutMs);
      const unsubscribe = holder.onSwap((snapshot) => {
        clearTimeout(timer);
        unsubscribe();
        resolve(snapshot);
      });
      void this.check();
    });
  }

  async #backstopCheck(): Promise<void> {
    let seen: string;
    try {
      const info = await stat(this.#options.file);
      seen = `${info.ino}:${info.size}:${info.mtimeMs}`;
    } catch {
      seen = missing;
    }
    if (seen !== this.#lastStat) await this.check();
  }

  async #readOnce(): Promise<void> {
    const { file, scope, holder, logger, now, credentials } = this.#options;
    let content: Buffer;
    try {
      // One open file: the stat and the content are of the same inode, even mid-rename.
      const handle = await open(file, 'r');
      try {
        const info = await handle.stat();
        this.#lastStat = `${info.ino}:${info.size}:${info.mtimeMs}`;
        if (info.size > maxRenderedFileBytes) {
          this.#refuse(`oversize:${this.#lastStat}`, new SecretsFileError(file, undefined,
            `is ${info.size} bytes, over the ${maxRenderedFileBytes}-byte limit`));
          return;
        }
        content = await handle.readFile();
      } finally {
        await handle.close();
      }
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      this.#lastStat = code === 'ENOENT' ? missing : undefined;
      this.#refuse(code === 'ENOENT' ? missing : `unreadable:${code ?? ''}`,
        new SecretsFileError(file, undefined, code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? 'error'})`));
      return;
    }

    const revision = contentRevision(content);
    if (revision === this.#lastSeen || revision === holder.current?.revision) {
      // The agent rewrote what we already have (or already refused): no swap, no reload line.
      this.#lastSeen = revision;
      this.#stats.unchanged++;
      return;
    }
    let snapshot: ConfigSnapshot;
    try {
      snapshot = parseRenderedFile(file, content, scope, now(), credentials);
    } catch (error) {
      if (!(error instanceof SecretsFileError)) throw error;
      this.#refuse(revision, error);
      return;
    }
    this.#lastSeen = revision;
    this.#stats.reloads++;
    holder.swap(snapshot);
    logger.info(
      { file, versions: sourceVersions(snapshot) },
      'secrets loaded from the rendered file',
    );
  }

  #refuse(seen: string, error: SecretsFileError): void {
    if (seen === this.#lastSeen) return;
    this.#lastSeen = seen;
    this.#stats.rejected++;
    this.#stats.lastError = error.message;
    const { logger, holder } = this.#options;
    logger.error(
      { file: error.file, key: error.key, reason: error.reason, keptRevision: holder.current?.revision },
      holder.current === undefined
        ? 'rendered secrets file refused; no configuration loaded yet'
        : 'rendered secrets file refused; keeping the last good configuration',
    );
  }
}
