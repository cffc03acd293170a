import type { WatchStatus } from './watch-status.js';

/** Why the service cannot vouch for its Vault token: stable codes clients and alerts match on. */
export type TokenProblem =
  | 'vault_token_invalid'
  | 'vault_token_expired'
  | 'vault_token_missing'
  | 'vault_login_failed';

/**
 * Where the token watchers report what they learn. They decide nothing about traffic: the
 * HTTP layer turns `invalid` into a halted gate and `valid` into an open one.
 */
export interface TokenReport {
  /** The token was just verified (looked up, renewed or issued) and is good for `ttlSeconds` (0: no expiry). */
  valid(ttlSeconds: number): void;
  /** `reason` is for the log and the operator's view: it may name files and Vault's answer. */
  invalid(code: TokenProblem, reason: string): void;
}

/** What the operator's view shows of the token. */
export interface TokenStatus extends WatchStatus {
  /** Who holds the token: Vault Agent, or the service itself (SDK mode). */
  readonly mode: 'agent' | 'sdk';
}
