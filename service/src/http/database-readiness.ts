import type { ConfigSnapshot } from '../config/snapshot.js';
import type { PoolHolder } from '../db/pool-holder.js';

/** How long /readyz waits for the database's answer before it says not ready. */
export const databaseProbeTimeoutMs = 2_000;

/**
 * Whether the database the data routes use answers, as /readyz reports it.
 *
 * A data route that finds the database unavailable (the error handler's 503
 * `database_unavailable`: PostgreSQL unreachable, or refusing the credentials) marks it
 * suspect. While it is suspect, each /readyz runs one `SELECT 1` on the current snapshot's pool
 * (the one new requests get), with a short timeout; concurrent probes share that one query.
 * The first probe that succeeds clears it. While nothing failed, /readyz costs the database
 * nothing, and a service whose routes never reach the database (no request yet) is not held
 * back by it.
 *
 * Why not a query on every probe: a probe per instance every few seconds is cheap, but it would
 * make the database a condition of readiness before any request needs it; the data routes'
 * own outcome is the truth the load balancer needs, and the probe then tells when it ends
 * (the balancer sends no data request to an instance it took out).
 */
export class DatabaseReadiness {
  readonly #pools: Pick<PoolHolder, 'use'>;
  readonly #timeoutMs: number;
  /** Failures reported since the start: a probe clears only the ones it began after. */
  #failures = 0;
  #clearedUpTo = 0;
  #probe: Promise<boolean> | undefined;

  constructor(pools: Pick<PoolHolder, 'use'>, timeoutMs = databaseProbeTimeoutMs) {
    this.#pools = pools;
    this.#timeoutMs = timeoutMs;
  }

  /** A data route met an unavailable database. */
  failed(): void {
    this.#failures++;
  }

  get suspect(): boolean {
    return this.#failures > this.#clearedUpTo;
  }

  /** True when no data route failed since the last good probe, or when the database answers now. */
  async ready(snapshot?: ConfigSnapshot): Promise<boolean> {
    if (!this.suspect) return true;
    this.#probe ??= this.#check(snapshot).finally(() => { this.#probe = undefined; });
    return this.#probe;
  }

  async #check(snapshot: ConfigSnapshot | undefined): Promise<boolean> {
    const seen = this.#failures;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { reject(new Error('database probe timed out')); }, this.#timeoutMs);
    });
    try {
      await Promise.race([this.#pools.use((pool) => pool.query('SELECT 1'), snapshot), timeout]);
      this.#clearedUpTo = Math.max(this.#clearedUpTo, seen);
      return !this.suspect;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }
}
