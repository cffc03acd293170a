import { performance } from 'node:perf_hooks';
import type { Logger } from '../log/logger.js';
import { CheckLoop } from './check-loop.js';
import { TokenState } from './token-state.js';
import type { TokenKeeper, TokenReport, TokenStatus } from './token-report.js';
import { renewalDelayMs, retryDelayMs, wakeDelayMs, type ScheduleRules } from './token-schedule.js';
import type { VaultApi } from './vault-api.js';
import { describeVaultError, failureText, isTokenRefused } from './vault-error.js';

export interface AgentTokenWatcherOptions {
  api: Pick<VaultApi, 'lookupSelf'>;
  /** The agent's token sink (VAULT_TOKEN_FILE), named in what is reported. */
  tokenFile: string;
  readToken: () => Promise<string | undefined>;
  report: TokenReport;
  logger: Logger;
  rules: ScheduleRules;
  /** A monotonic clock: expiry is measured locally, never from server timestamps. */
  now?: () => number;
  wallClock?: () => number;
}

/**
 * Vault Agent owns the token and renews it; the service reads the agent's sink and asks Vault
 * about the token (lookup-self) at least every maximum check interval, so a revoked token is
 * seen within that interval. Vault refusing the token is reported at once; a check that fails
 * for any other reason is retried, and the token is trusted until its known expiry.
 */
export class AgentTokenWatcher implements TokenKeeper {
  readonly #o: Required<AgentTokenWatcherOptions>;
  readonly #loop: CheckLoop;
  readonly #state: TokenState;
  #token: string | undefined;

  constructor(options: AgentTokenWatcherOptions) {
    this.#o = { now: () => performance.now(), wallClock: Date.now, ...options };
    this.#loop = new CheckLoop(() => this.#check(), this.#o.now);
    this.#state = new TokenState(() => {
      this.#o.report.invalid('vault_token_expired', `the known expiry of the agent's token from ${this.#o.tokenFile} ` +
        'passed without a successful check: Vault could not be reached to verify it');
    }, this.#o.now, this.#o.wallClock);
  }

  /** Runs the first check and resolves once it is done; the loop then goes on by itself. */
  start(): Promise<void> {
    return this.#loop.start();
  }

  async stop(): Promise<void> {
    await this.#loop.stop();
    this.#state.expiry.clear();
  }

  checkNow(): Promise<void> {
    return this.#loop.wake();
  }

  status(): TokenStatus {
    return this.#state.status('agent', this.#loop.nextInMs());
  }

  /** One check; returns the delay until the next. */
  async #check(): Promise<number> {
    const { api, tokenFile, readToken, report, logger, rules } = this.#o;
    const state = this.#state;
    const token = await readToken();
    if (token !== undefined && token !== this.#token) {
      if (this.#token !== undefined) logger.info({ file: tokenFile }, 'the agent wrote a new token');
      // The old token's known expiry stands until the new one is verified.
      this.#token = token;
    }
    if (this.#token === undefined) {
      report.invalid('vault_token_missing', `no token in ${tokenFile} (VAULT_TOKEN_FILE): is Vault Agent running?`);
      return retryDelayMs(state.failures++, rules);
    }
    try {
      const info = await api.lookupSelf(this.#token);
      state.verified(info.ttlSeconds, info.renewable);
      report.valid(info.ttlSeconds);
      const remaining = state.expiry.remainingMs();
      // A token without expiry (a root token) can still be revoked: it is checked every minute.
      return wakeDelayMs(renewalDelayMs(remaining ?? 90_000, rules), rules);
    } catch (error) {
      if (isTokenRefused(error)) {
        state.refused();
        report.invalid('vault_token_invalid', `Vault refused the agent's token from ${tokenFile} (${failureText(error)}). ` +
          'If only the token was revoked, the agent logs in again with its secret id and traffic resumes by itself; ' +
          'if the secret id was revoked too, traffic stays halted until an operator delivers a fresh secret id to the agent');
        return retryDelayMs(state.failures++, rules);
      }
      const delay = retryDelayMs(state.failures++, rules, describeVaultError(error).retryAfterMs);
      logger.warn({ problem: failureText(error), retryInMs: delay, expiresInMs: state.expiry.remainingMs() ?? null },
        'could not verify the Vault token; serving from the last good configuration until its known expiry');
      return delay;
    }
  }
}
