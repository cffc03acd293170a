import pg from 'pg';
import type { ConfigSnapshot } from '../config/snapshot.js';
import type { SnapshotHolder } from '../config/snapshot-holder.js';
import type { Logger } from '../log/logger.js';
import type { DatabaseSsl } from './tls.js';

export interface DatabaseTarget {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  /** TLS options (databaseTls), or false: in clear. */
  readonly ssl?: DatabaseSsl;
}

/** Connections a pool opens at the most; under that, a request finding none idle opens one. */
export const poolMaxConnections = 10;

interface Entry {
  readonly pool: pg.Pool;
  readonly credentials: string;
  users: number;
  retired: boolean;
}

/**
 * PostgreSQL's answers that say the credentials may be gone: a session ended by an
 * administrator (Vault's revocation statements end the user's sessions: 57P01), a password
 * refused (28P01), a user that no longer exists (28000).
 */
const credentialsGoneCodes = new Set(['57P01', '28P01', '28000']);
const credentialsGone = (error: unknown): string | undefined => {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && credentialsGoneCodes.has(code) ? code : undefined;
};

/** Compared, never logged: a change of either means a new pool. */
function credentialsOf(snapshot: ConfigSnapshot): string {
  const { username, password } = snapshot.secrets.database;
  return `${username}\u0000${password}`;
}

/**
 * One PostgreSQL pool for the current database credentials. When a snapshot brings new
 * credentials, a new pool takes every new request, and the old one is closed once the
 * requests that hold it have finished: rotation fails no request in flight. A request holds
 * the pool of its own snapshot (hold), so all it does, database included, comes from one
 * snapshot even when the credentials change during it.
 */
export class PoolHolder {
  #entry: Entry | undefined;
  /** The current pool and the retired ones that requests still hold, by credentials. */
  readonly #open = new Map<string, Entry>();
  readonly #target: DatabaseTarget;
  readonly #logger: Logger;
  readonly #unsubscribe: () => void;
  readonly #closing = new Set<Promise<void>>();
  readonly #credentialsListeners = new Set<(code: string) => void>();

  constructor(target: DatabaseTarget, holder: SnapshotHolder, logger: Logger) {
    this.#target = target;
    this.#logger = logger;
    if (holder.current !== undefined) this.#replace(holder.current);
    this.#unsubscribe = holder.onSwap((snapshot) => { this.#replace(snapshot); });
  }

  /**
   * Keeps the pool of `snapshot`'s credentials open until the returned function is called:
   * what a request does when it takes its snapshot. Calling it again does nothing.
   */
  hold(snapshot: ConfigSnapshot): () => void {
    const entry = this.#entryFor(snapshot);
    if (entry === undefined) return () => undefined;
    entry.users++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#release(entry);
    };
  }

  /**
   * Runs `work` with the pool of `snapshot` when it is still open (a request holds it), else
   * the current pool; that pool stays open until `work` settles.
   */
  async use<T>(work: (pool: pg.Pool) => Promise<T>, snapshot?: ConfigSnapshot): Promise<T> {
    const entry = this.#entryFor(snapshot);
    if (entry === undefined) throw new Error('no database credentials loaded');
    entry.users++;
    try {
      return await work(entry.pool);
    } catch (error) {
      this.#maybeCredentialsGone(error);
      throw error;
    } finally {
      this.#release(entry);
    }
  }

  /**
   * Calls `listener` with PostgreSQL's code each time a connection or a query of the current
   * credentials' pools says they may be gone (a revoked lease shows there first, before any
   * lookup); returns the unsubscribe.
   */
  onCredentialsGone(listener: (code: string) => void): () => void {
    this.#credentialsListeners.add(listener);
    return () => { this.#credentialsListeners.delete(listener); };
  }

  #maybeCredentialsGone(error: unknown): void {
    const code = credentialsGone(error);
    if (code !== undefined) for (const listener of this.#credentialsListeners) listener(code);
  }

  /** The pool of `snapshot`'s credentials while it is open, else the current one. */
  #entryFor(snapshot: ConfigSnapshot | undefined): Entry | undefined {
    return (snapshot === undefined ? undefined : this.#open.get(credentialsOf(snapshot))) ?? this.#entry;
  }

  #release(entry: Entry): void {
    entry.users--;
    if (entry.retired && entry.users === 0) this.#close(entry);
  }

  async close(): Promise<void> {
    this.#unsubscribe();
    const entry = this.#entry;
    this.#entry = undefined;
    if (entry !== undefined) {
      entry.retired = true;
      if (entry.users === 0) this.#close(entry);
    }
    await Promise.all(this.#closing);
  }

  #replace(snapshot: ConfigSnapshot): void {
    const { username, password } = snapshot.secrets.database;
    const credentials = credentialsOf(snapshot);
    if (this.#entry?.credentials === credentials) return;
    const pool = new pg.Pool({
      ...this.#target, user: username, password, max: poolMaxConnections,
      // Idle connections stay open: while a password rotates in PostgreSQL before the new
      // one reaches the service, requests keep being served on already open connections.
      idleTimeoutMillis: 0,
      connectionTimeoutMillis: 5000,
    });
    pool.on('error', (error) => {
      this.#logger.warn({ err: error.message }, 'an idle PostgreSQL connection failed');
      this.#maybeCredentialsGone(error);
    });
    const previous = this.#entry;
    this.#entry = { pool, credentials, users: 0, retired: false };
    this.#open.set(credentials, this.#entry);
    if (previous !== undefined) {
      previous.retired = true;
      this.#logger.info('database credentials changed: new connections use the new pool');
      if (previous.users === 0) this.#close(previous);
    }
  }

  #close(entry: Entry): void {
    if (this.#open.get(entry.credentials) === entry) this.#open.delete(entry.credentials);
    const closing = entry.pool.end().catch((error: unknown) => {
      this.#logger.warn({ err: (error as Error).message }, 'closing a retired PostgreSQL pool failed');
    });
    this.#closing.add(closing);
    void closing.finally(() => this.#closing.delete(closing));
  }
}
