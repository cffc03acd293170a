import type { LeaseReport, LeaseStatus } from '../report/lease-report.js';
import { DatabaseCredentialsLease, leaseScheduleRules } from '../vault/database-credentials-lease.js';
import { LifetimeWatcher } from '../vault/lifetime-watcher.js';
import type { ModeContext, SecretsSource } from './agent-mode.js';

/** What the composition root holds of the database credentials' lease. */
export interface DatabaseLeaseWatch {
  start(): Promise<void>;
  /** null while the service holds no lease (kv credentials). */
  status(): LeaseStatus | null;
  /** PostgreSQL reported the credentials gone (sessions ended, logins refused): Vault is asked at once. */
  credentialsGone(): void;
}

/**
 * Dynamic credentials: their lease watched (agent mode) or renewed (SDK mode), looked at again
 * as soon as new credentials are loaded, and replaced after a new SDK login (a lease ends with
 * the token that created it).
 *
 * Unlike the token, the lease is not looked up every maximum check interval: its own TTL
 * times the checks (renewals in SDK mode), and a revocation is seen through PostgreSQL, whose
 * sessions and logins of a revoked user fail at once (`credentialsGone`). That halves what an
 * instance asks of Vault at rest (BENCHMARKS.md, section 4b).
 */
export function databaseLease(
  { api, holder, rules, logger, started }: ModeContext, source: SecretsSource, report: LeaseReport,
): DatabaseLeaseWatch {
  const lease = new DatabaseCredentialsLease({
    api, current: () => holder.current?.lease ?? null, token: () => source.currentToken(), logger,
    ...(source.replaceCredentials === undefined ? {} : { replace: source.replaceCredentials }),
  });
  const watcher = new LifetimeWatcher({
    strategy: lease, logger, rules: leaseScheduleRules(rules),
    // Vault Agent may renew a lease in its last second (with the tests' 4 s leases its lookups
    // read a TTL of 0 before the renewal, on both servers): the lease's expiry is taken at the
    // high end of Vault's rounded-down TTL, a second later than the token's.
    expiryAtLowEnd: false,
    report: { valid: (ttl) => { report.leaseValid(ttl); }, invalid: (code, reason) => { report.leaseInvalid(code, reason); } },
  });
  started.add('lease checks', () => watcher.stop());
  const unsubscribeSwap = holder.onSwap((next, previous) => {
    if (next.lease?.id !== previous?.lease?.id) void watcher.checkNow();
  });
  const unsubscribeLogin = source.onNewLogin?.(() => {
    if (lease.lease !== undefined) void watcher.replaceSoon('a new Vault token: the lease the old token created ends with it');
  });
  started.add('lease swap watch', () => { unsubscribeSwap(); unsubscribeLogin?.(); });
  return {
    start: () => watcher.start(),
    status: () => (lease.lease === undefined ? null : { path: lease.lease.path, renewedBy: lease.renewedBy, ...watcher.status() }),
    credentialsGone: () => { lease.suspect(); void watcher.checkNow(); },
  };
}
