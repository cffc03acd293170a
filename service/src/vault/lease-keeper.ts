import { performance } from 'node:perf_hooks';
import type { DatabaseLease } from '../config/snapshot.js';
import type { Logger } from '../log/logger.js';
import { CheckLoop } from './check-loop.js';
import type { LeaseReport, LeaseStatus } from './lease-report.js';
import { TokenState } from './token-state.js';
import { renewalCapped, renewalDelayMs, retryDelayMs, sdkAction, wakeDelayMs, type ScheduleRules } from './token-schedule.js';
import type { LeaseInfo, VaultApi } from './vault-api.js';
import { describeVaultError, failureText, isLeaseGone, isTransient } from './vault-error.js';

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
  /** A monotonic clock: expiry is measured locally, never from server timestamps. */
  now?: () => number;
  wallClock?: () => number;
}

/** When the service is not holding a lease (kv mode, or before the first), how often it looks again. */
const idleCheckMs = 60_000;

/**
 * Keeps the database credentials' lease in view, on the token's schedule rules: looked up at
 * least every maximum check interval (an operator's revocation is seen within it), renewed at
 * about two thirds of its TTL when the service holds it, replaced before the max TTL ends it.
 * A lease that is gone, or whose known expiry passes, is reported; new credentials reopen.
 */
export class LeaseKeeper {
  readonly #o: Required<Omit<LeaseKeeperOptions, 'replace'>> & Pick<LeaseKeeperOptions, 'replace'>;
  readonly #loop: CheckLoop;
  readonly #state: TokenState;
  #lease: DatabaseLease | undefined;
  #renewAt = 0;
  /** Why only new credentials help now; undefined while renewal works. */
  #replaceWhy: string | undefined;

  constructor(options: LeaseKeeperOptions) {
    this.#o = { now: () => performance.now(), wallClock: Date.now, ...options };
    this.#loop = new CheckLoop(() => this.#step(), this.#o.now);
    this.#state = new TokenState(() => {
      this.#o.report.leaseInvalid('database_lease_expired', `the known expiry of the lease on ${this.#path()} passed ` +
        (this.#o.replace === undefined
          ? 'without a successful lookup: Vault could not be reached, or Vault Agent stopped renewing it'
          : 'without a renewal or new credentials: Vault could not be reached or refused new credentials'));
    }, this.#o.now, this.#o.wallClock);
  }

  start(): Promise<void> {
    return this.#loop.start();
  }

  async stop(): Promise<void> {
    await this.#loop.stop();
    this.#state.expiry.clear();
  }

  /** Looks at the lease now: new credentials were loaded. */
  checkNow(): Promise<void> {
    return this.#loop.wake();
  }

  /** SDK mode: fetch new credentials at the next step, while the current ones still work (the token changed). */
  replaceSoon(why: string): Promise<void> {
    if (this.#o.replace === undefined || this.#lease === undefined) return Promise.resolve();
    this.#replaceWhy = why;
    this.#renewAt = this.#o.now();
    return this.#loop.wake();
  }

  /** null while the service holds no lease (kv mode). */
  status(): LeaseStatus | null {
    if (this.#lease === undefined) return null;
    const { ttlSeconds, renewable, lastCheckAt, lastCheckOk, nextCheckInSeconds } = this.#state.status('sdk', this.#loop.nextInMs());
    return {
      path: this.#lease.path, renewedBy: this.#o.replace === undefined ? 'agent' : 'service',
      ttlSeconds, renewable, lastCheckAt, lastCheckOk, nextCheckInSeconds,
    };
  }

  #path(): string {
    return this.#lease?.path ?? 'the database credentials';
  }

  async #step(): Promise<number> {
    const lease = this.#o.current();
    if (lease === null) {
      this.#lease = undefined;
      this.#state.expiry.clear();
      return wakeDelayMs(idleCheckMs, this.#o.rules);
    }
    if (lease.id !== this.#lease?.id) this.#adopt(lease);
    const token = await this.#o.token();
    // The token watcher reports a missing token; this one waits for it.
    if (token === undefined) return retryDelayMs(this.#state.failures++, this.#o.rules);
    const action = this.#o.replace === undefined
      ? 'check' : sdkAction(this.#o.now(), this.#renewAt, this.#replaceWhy !== undefined, this.#o.rules);
    try {
      if (action === 'login') return await this.#replace(this.#replaceWhy ?? 'new credentials are due', true);
      if (action === 'renew') return await this.#renew(lease, token);
      return await this.#lookup(lease, token);
    } catch (error) {
      const delay = retryDelayMs(this.#state.failures++, this.#o.rules, describeVaultError(error).retryAfterMs);
      this.#o.logger.warn({ path: lease.path, action, problem: failureText(error), retryInMs: delay,
        expiresInMs: this.#state.expiry.remainingMs() ?? null },
      'could not reach Vault about the database credentials\' lease; using them until its known expiry');
      return delay;
    }
  }

  /** New credentials: issued just now with their full duration. */
  #adopt(lease: DatabaseLease): void {
    this.#lease = lease;
    this.#replaceWhy = lease.renewable ? undefined : 'the lease is not renewable';
    this.#renewAt = this.#o.now() + renewalDelayMs(lease.durationSeconds * 1000, this.#o.rules);
    this.#verified({ ttlSeconds: lease.durationSeconds, renewable: lease.renewable });
  }

  #verified(info: LeaseInfo): void {
    // Vault counts whole seconds down: 0 is "under a second left", not "no expiry" as for a root token.
    const ttlSeconds = Math.max(1, info.ttlSeconds);
    this.#state.verified(ttlSeconds, info.renewable);
    this.#o.report.leaseValid(ttlSeconds);
    // The known expiry is rounded down and the renewal time spread up to 5/6 of the TTL: with
    // a short lease a lookup can bring the expiry before the renewal. The renewal comes first.
    const latest = this.#o.now() + ttlSeconds * 1000 - this.#o.rules.minDelayMs;
    if (this.#renewAt > latest) this.#renewAt = latest;
  }

  #nextWake(): number {
    const rules = this.#o.rules;
    if (this.#o.replace !== undefined) return wakeDelayMs(this.#renewAt - this.#o.now(), rules);
    return wakeDelayMs(renewalDelayMs(this.#state.expiry.remainingMs() ?? idleCheckMs, rules), rules);
  }

  async #lookup(lease: DatabaseLease, token: string): Promise<number> {
    try {
      this.#verified(await this.#o.api.lookupLease(lease.id, token));
      return this.#nextWake();
    } catch (error) {
      if (!isLeaseGone(error)) throw error;
      return await this.#gone(lease, failureText(error));
    }
  }

  async #renew(lease: DatabaseLease, token: string): Promise<number> {
    let renewed: LeaseInfo;
    try {
      renewed = await this.#o.api.renewLease(lease.id, token, lease.durationSeconds);
    } catch (error) {
      if (isLeaseGone(error)) return await this.#gone(lease, failureText(error));
      if (isTransient(error)) throw error;
      // Vault refuses to renew a lease close to its max TTL ("past the max TTL, cannot renew")
      // although the previous renewal granted the full TTL: the lease still works until its
      // known expiry, and only new credentials help.
      this.#replaceWhy = `renewal refused (${failureText(error)})`;
      return await this.#replace(this.#replaceWhy, true);
    }
    this.#renewAt = Number.POSITIVE_INFINITY;
    this.#verified(renewed);
    if (renewalCapped(renewed.ttlSeconds, lease.durationSeconds, renewed.renewable)) {
      this.#replaceWhy = renewed.renewable
        ? `renewal no longer extends the lease (${renewed.ttlSeconds} s left of its max TTL)` : 'the lease is not renewable';
      // New credentials now, while these still work: the old pool drains before they end.
      return await this.#replace(this.#replaceWhy, true);
    }
    // No later than #verified allowed: before the known expiry.
    this.#renewAt = Math.min(this.#renewAt, this.#o.now() + renewalDelayMs(renewed.ttlSeconds * 1000, this.#o.rules));
    return this.#nextWake();
  }

  async #gone(lease: DatabaseLease, answer: string): Promise<number> {
    this.#state.refused();
    const why = `Vault no longer knows the lease on ${lease.path} (${answer}): the credentials were revoked or expired`;
    if (this.#o.replace === undefined) {
      this.#o.report.leaseInvalid('database_lease_revoked', `${why}; traffic resumes when Vault Agent renders new credentials`);
      return retryDelayMs(this.#state.failures++, this.#o.rules);
    }
    return await this.#replace(why, false);
  }

  /** `stillValid`: the current credentials work until their known expiry, so a failure need not halt yet. */
  async #replace(why: string, stillValid: boolean): Promise<number> {
    const replace = this.#o.replace;
    if (replace === undefined) return this.#nextWake();
    this.#o.logger.info({ path: this.#path(), why }, 'fetching new database credentials');
    try {
      await replace(why);
    } catch (error) {
      const problem = `${why}, and new credentials could not be had: ${failureText(error)}`;
      if (!stillValid) this.#o.report.leaseInvalid('database_lease_revoked', problem);
      if (isTransient(error)) throw error;
      this.#replaceWhy = why;
      this.#renewAt = this.#o.now();
      if (stillValid) this.#o.logger.error({ problem }, 'cannot get new database credentials; traffic halts when the current lease expires');
      return retryDelayMs(this.#state.failures++, this.#o.rules);
    }
    const lease = this.#o.current();
    if (lease !== null && lease.id !== this.#lease?.id) this.#adopt(lease);
    return this.#nextWake();
  }
}
