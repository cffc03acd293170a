import { performance } from 'node:perf_hooks';
import type { DatabaseLease } from '../config/snapshot.js';
import type { Logger } from '../log/logger.js';
import type { LeaseProblem } from '../report/lease-report.js';
import type { Finding, Strategy, Vouched } from './lifetime-watcher.js';
import { renewalCapped, type ScheduleRules } from './token-schedule.js';
import type { LeaseInfo, VaultApi } from './vault-api.js';
import { failureText, isLeaseGone, isTokenRefused, isTransient } from './vault-error.js';

export interface DatabaseCredentialsLeaseOptions {
  api: Pick<VaultApi, 'lookupLease' | 'renewLease'>;
  /** The lease of the credentials in use, from the current snapshot; null when there is none (kv credentials). */
  current: () => DatabaseLease | null;
  /** The token the calls use: the agent's, or the service's own. */
  token: () => Promise<string | undefined>;
  logger: Logger;
  /**
   * SDK mode: the service holds the lease, renews it, and calls this to fetch new credentials
   * (and swap the snapshot) when renewal stops extending the lease or the lease is gone. In
   * agent mode it is left out: the agent renews and renders, and the service only looks the
   * lease up, to halt when it is gone.
   */
  replace?: (why: string) => Promise<void>;
  now?: () => number;
}

/**
 * After PostgreSQL reports the credentials gone, the lease is looked up at once and again this
 * long after: Vault ends the database sessions before it forgets the lease, so the first lookup
 * can still find it.
 */
export const suspectLookupsMs = [1000, 3000] as const;

/**
 * The lease's schedule: the token's rules without the maximum check interval. The lease's own TTL
 * times its lookups (renewals in SDK mode); a revocation is seen through PostgreSQL (`suspect`).
 */
export const leaseScheduleRules = (tokenRules: ScheduleRules): ScheduleRules => ({ ...tokenRules, maxCheckIntervalMs: 0 });

const vouched = (info: LeaseInfo, fresh: boolean, fullTtlSeconds?: number): Vouched =>
  ({ kind: 'vouched', ttlSeconds: info.ttlSeconds, renewable: info.renewable, expires: true, fresh, ...(fullTtlSeconds === undefined ? {} : { fullTtlSeconds }) });

/**
 * The database credentials' lease: looked up on its own TTL's schedule (renewed when the service
 * holds it), replaced before its max TTL, and looked up at once and twice more when PostgreSQL
 * reports the credentials gone (`suspect`).
 */
export class DatabaseCredentialsLease implements Strategy<LeaseProblem> {
  /** The lease watched; undefined while none is held (kv credentials). */
  lease: DatabaseLease | undefined;
  readonly replace?: (why: string) => Promise<Vouched>;
  readonly #options: DatabaseCredentialsLeaseOptions;
  readonly #now: () => number;
  /** When the lease is looked up again while suspect, on the monotonic clock, soonest first. */
  #suspectLookups: number[] = [];

  constructor(options: DatabaseCredentialsLeaseOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => performance.now());
    // In agent mode the agent gets new credentials: the strategy then has no replace.
    if (options.replace !== undefined) this.replace = (why) => this.#replace(why);
  }

  /** Who renews it, for the operator's view. */
  get renewedBy(): 'agent' | 'service' {
    return this.#options.replace === undefined ? 'agent' : 'service';
  }

  describe(): string {
    return `the lease on ${this.lease?.path ?? 'the database credentials'}`;
  }

  /** PostgreSQL reported the credentials gone: the next lookups come now and `suspectLookupsMs` later. */
  suspect(): void {
    const now = this.#now();
    this.#suspectLookups = suspectLookupsMs.map((ms) => now + ms);
  }

  async step(renewDue: boolean): Promise<Finding<LeaseProblem>> {
    const finding = await this.#look(renewDue);
    if (finding.kind !== 'vouched') return finding;
    const now = this.#now();
    this.#suspectLookups = this.#suspectLookups.filter((at) => at > now);
    const next = this.#suspectLookups[0];
    return next === undefined ? finding : { ...finding, checkAgainInMs: next - now };
  }

  async #look(renewDue: boolean): Promise<Finding<LeaseProblem>> {
    const { api, current, token: currentToken, replace } = this.#options;
    const lease = current();
    if (lease === null) {
      this.lease = undefined;
      return { kind: 'idle' };
    }
    // New credentials: issued just now with their full duration, then looked up at once.
    if (lease.id !== this.lease?.id) return { ...this.#adopt(lease), askNow: true };
    const token = await currentToken();
    // The token's watcher reports a missing token; this one waits for it.
    if (token === undefined) return { kind: 'waiting', reason: 'no Vault token yet' };
    try {
      // Agent mode: the agent renews the lease to its full duration, which times the next look.
      if (replace === undefined) return vouched(await api.lookupLease(lease.id, token), true, lease.durationSeconds);
      if (!renewDue) return vouched(await api.lookupLease(lease.id, token), false);
      if (!lease.renewable) return { kind: 'outdated', why: 'the lease is not renewable' };
      let renewed: LeaseInfo;
      try {
        renewed = await api.renewLease(lease.id, token, lease.durationSeconds);
      } catch (error) {
        if (isLeaseGone(error) || isTransient(error) || isTokenRefused(error)) throw error;
        // Vault refuses to renew a lease close to its max TTL ("past the max TTL, cannot renew")
        // although the previous renewal granted the full TTL: it still works until its known
        // expiry, and only new credentials help.
        return { kind: 'outdated', why: `renewal refused (${failureText(error)})` };
      }
      if (!renewalCapped(renewed.ttlSeconds, lease.durationSeconds, renewed.renewable)) return vouched(renewed, true);
      // New credentials now, while these still work: the old pool drains before they end.
      return {
        kind: 'outdated', vouched: vouched(renewed, true),
        why: renewed.renewable ? `renewal no longer extends the lease (${renewed.ttlSeconds} s left of its max TTL)` : 'the lease is not renewable',
      };
    } catch (error) {
      if (isTokenRefused(error)) {
        // PostgreSQL says the credentials are gone, and Vault refuses the token that created the
        // lease: a lease ends with its token (revoked or expired), so both say it is gone.
        if (this.#suspectLookups.length > 0) {
          return {
            kind: 'refused', code: 'database_lease_revoked',
            reason: `PostgreSQL reports the credentials of ${lease.path} gone, and Vault refuses the token that holds their lease ` +
              `(${failureText(error)}): a lease ends with its token`,
          };
        }
        // Said about the token, not the lease: the token's watcher reports it.
        throw Object.assign(new Error(`the token was refused (${failureText(error)}); the token's check reports it`), { cause: error });
      }
      if (!isLeaseGone(error)) throw error;
      const why = `Vault no longer knows the lease on ${lease.path} (${failureText(error)}): the credentials were revoked or expired`;
      return {
        kind: 'refused', code: 'database_lease_revoked',
        reason: replace === undefined ? `${why}; traffic resumes when Vault Agent renders new credentials` : why,
      };
    }
  }

  #adopt(lease: DatabaseLease): Vouched {
    this.lease = lease;
    return vouched({ ttlSeconds: lease.durationSeconds, renewable: lease.renewable }, true);
  }

  /** SDK mode only (see the constructor). */
  async #replace(why: string): Promise<Vouched> {
    this.#options.logger.info({ path: this.lease?.path, why }, 'fetching new database credentials');
    await this.#options.replace?.(why);
    const lease = this.#options.current();
    if (lease === null) throw new Error('no database credentials after fetching new ones');
    return this.#adopt(lease);
  }

  expired(): { code: LeaseProblem; reason: string } {
    return {
      code: 'database_lease_expired',
      reason: `the known expiry of the lease on ${this.lease?.path ?? 'the database credentials'} passed ` +
        (this.#options.replace === undefined
          ? 'without a successful lookup: Vault could not be reached, or Vault Agent stopped renewing it'
          : 'without a renewal or new credentials: Vault could not be reached or refused new credentials'),
    };
  }

  replaceFailed(problem: string): { code: LeaseProblem; reason: string } {
    return { code: 'database_lease_revoked', reason: problem };
  }
}
