import type { WatchStatus } from './watch-status.js';

/** Why the service cannot vouch for its database credentials' lease: codes clients and alerts match on. */
export type LeaseProblem = 'database_lease_revoked' | 'database_lease_expired';

/**
 * Where the lease's watcher reports what it learns of the database credentials' lease. Like
 * TokenReport, it decides nothing about traffic: the HTTP layer halts on `invalid`.
 */
export interface LeaseReport {
  /** The lease was just verified (looked up, renewed, or issued) with `ttlSeconds` left. */
  leaseValid(ttlSeconds: number): void;
  /** `reason` is for the log and the operator's view: it names the path and Vault's answer, never the lease id. */
  leaseInvalid(code: LeaseProblem, reason: string): void;
}

/** What the operator's view shows of the lease. */
export interface LeaseStatus extends WatchStatus {
  readonly path: string;
  /** Who renews it: Vault Agent, or the service itself (SDK mode). */
  readonly renewedBy: 'agent' | 'service';
}
