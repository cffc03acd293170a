import type { DatabaseLease } from '../config/snapshot.js';
import type { Logger } from '../log/logger.js';
import type { LeaseProblem, LeaseReport, LeaseStatus } from '../health/lease-report.js';
import { LifetimeWatcher, type Finding, type Strategy, type Vouched } from './lifetime-watcher.js';
import { renewalCapped, type ScheduleRules } from './token-schedule.js';
import type { LeaseInfo, VaultApi } from './vault-api.js';
import { failureText, isLeaseGone, isTokenRefused, isTransient } from './vault-error.js';

export interface LeaseKeeperOptions {
  api: Pick<VaultApi, 'lookupLease' | 'renewLease'>;
  /** The lease of the credentials in use, from the current snapshot; null when there is none (kv mode). */
  current: () => DatabaseLease | null;
  /** The token the calls use: the agent's, or the service's own. */
  token: () => Promise<string | undefined>;
  report: LeaseReport;
  logger: Logger;
  rules: ScheduleRules;
  /**
   * SDK mode: the service holds the lease, renews it, and calls this to fetch new credentials
   * (and swap the snapshot) when renewal stops extending the lease or the lease is gone. In
   * agent mode it is left out: the agent renews and renders, and the service only looks the
   * lease up, to halt when it is gone.
   */
  replace?: (why: string) => Promise<void>;
  now?: () => number;
  wallClock?: () => number;
}

const vouched = (info: LeaseInfo, fresh: boolean, fullTtlSeconds?: number): Vouched =>
  ({ kind: 'vouched', ttlSeconds: info.ttlSeconds, renewable: info.renewable, expires: true, fresh, ...(fullTtlSeconds === undefined ? {} : { fullTtlSeconds }) });

/**
 * The database credentials' lease: looked up (an operator's revocation is seen within the
 * maximum check interval), renewed when the service holds it, replaced before its max TTL.
 */
class DatabaseCredentialsLease implements Strategy<LeaseProblem> {
  lease: DatabaseLease | undefined;
  readonly #o: LeaseKeeperOptions;

  constructor(options: LeaseKeeperOptions) {
    this.#o = options;
  }

  describe(): string {
    return `the lease on ${this.lease?.path ?? 'the database credentials'}`;
  }

  async step(renewDue: boolean): Promise<Finding<LeaseProblem>> {
    const { api, current, token: currentToken, replace } = this.#o;
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
      if (!lease.renewable) return { kind: 'replace', why: 'the lease is not renewable' };
      let renewed: LeaseInfo;
      try {
        renewed = await api.renewLease(lease.id, token, lease.durationSeconds);
      } catch (error) {
        if (isLeaseGone(error) || isTransient(error) || isTokenRefused(error)) throw error;
        // Vault refuses to renew a lease close to its max TTL ("past the max TTL, cannot renew")
        // although the previous renewal granted the full TTL: it still works until its known
        // expiry, and only new credentials help.
        return { kind: 'replace', why: `renewal refused (${failureText(error)})` };
      }
      if (!renewalCapped(renewed.ttlSeconds, lease.durationSeconds, renewed.renewable)) return vouched(renewed, true);
      // New credentials now, while these still work: the old pool drains before they end.
      return {
        ...vouched(renewed, true),
        replace: renewed.renewable ? `renewal no longer extends the lease (${renewed.ttlSeconds} s left of its max TTL)` : 'the lease is not renewable',
      };
    } catch (error) {
      if (isTokenRefused(error)) {
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

  /** SDK mode only: the watcher has no acquire in agent mode (see LeaseKeeper). */
  async acquire(why: string): Promise<Vouched> {
    const replace = this.#o.replace;
    if (replace === undefined) throw new Error('agent mode: Vault Agent renders new credentials');
    this.#o.logger.info({ path: this.lease?.path, why }, 'fetching new database credentials');
    await replace(why);
    const lease = this.#o.current();
    if (lease === null) throw new Error('no database credentials after fetching new ones');
    return this.#adopt(lease);
  }

  expired(): { code: LeaseProblem; reason: string } {
    return {
      code: 'database_lease_expired',
      reason: `the known expiry of the lease on ${this.lease?.path ?? 'the database credentials'} passed ` +
        (this.#o.replace === undefined
          ? 'without a successful lookup: Vault could not be reached, or Vault Agent stopped renewing it'
          : 'without a renewal or new credentials: Vault could not be reached or refused new credentials'),
    };
  }

  acquireFailed(problem: string): { code: LeaseProblem; reason: string } {
    return { code: 'database_lease_revoked', reason: problem };
  }
}

/** The database credentials' lease, watched (agent mode) or kept (SDK mode). */
export class LeaseKeeper {
  readonly #lease: DatabaseCredentialsLease;
  readonly #watcher: LifetimeWatcher<LeaseProblem>;
  readonly #renewedBy: LeaseStatus['renewedBy'];

  constructor(options: LeaseKeeperOptions) {
    const lease = new DatabaseCredentialsLease(options);
    this.#lease = lease;
    this.#renewedBy = options.replace === undefined ? 'agent' : 'service';
    // In agent mode the agent gets new credentials: the strategy then has no acquire.
    const strategy: Strategy<LeaseProblem> = options.replace === undefined
      ? { describe: () => lease.describe(), step: (due) => lease.step(due), expired: () => lease.expired(), acquireFailed: (p) => lease.acquireFailed(p) }
      : lease;
    this.#watcher = new LifetimeWatcher({
      ...options, strategy,
      report: { valid: (ttl) => { options.report.leaseValid(ttl); }, invalid: (code, reason) => { options.report.leaseInvalid(code, reason); } },
    });
  }

  start(): Promise<void> {
    return this.#watcher.start();
  }

  stop(): Promise<void> {
    return this.#watcher.stop();
  }

  /** Looks at the lease now: new credentials were loaded. */
  checkNow(): Promise<void> {
    return this.#watcher.checkNow();
  }

  /** SDK mode: fetch new credentials at the next step, while the current ones still work (the token changed). */
  replaceSoon(why: string): Promise<void> {
    if (this.#lease.lease === undefined) return Promise.resolve();
    return this.#watcher.replaceSoon(why);
  }

  /** null while the service holds no lease (kv mode). */
  status(): LeaseStatus | null {
    const lease = this.#lease.lease;
    if (lease === undefined) return null;
    return { path: lease.path, renewedBy: this.#renewedBy, ...this.#watcher.status() };
  }
}
