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

/** What a token watcher shows the operator. */
export interface TokenStatus {
  readonly mode: 'agent' | 'sdk';
  readonly ttlSeconds: number | null;
  readonly renewable: boolean | null;
  readonly lastCheckAt: string | null;
  readonly lastCheckOk: boolean | null;
  readonly nextCheckInSeconds: number | null;
}

/** What the composition root needs of either watcher. */
export interface TokenKeeper {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Checks at once (the agent wrote a new token); a check under way is followed by one more. */
  checkNow(): Promise<void>;
  status(): TokenStatus;
}
