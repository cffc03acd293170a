import { performance } from 'node:perf_hooks';
import type { Logger } from '../log/logger.js';
import { CheckLoop } from './check-loop.js';
import { TokenState } from './token-state.js';
import type { TokenKeeper, TokenReport, TokenStatus } from './token-report.js';
import { renewalCapped, renewalDelayMs, retryDelayMs, sdkAction, wakeDelayMs, type ScheduleRules } from './token-schedule.js';
import type { LoginResult, VaultApi } from './vault-api.js';
import { describeVaultError, failureText, isTokenRefused, isTransient } from './vault-error.js';

export interface SdkTokenRenewerOptions {
  api: Pick<VaultApi, 'lookupSelf' | 'renewSelf'>;
  /** The login made at start-up, which verified the token. */
  initial: LoginResult;
  /** AppRole login with the secret id at hand (a secret id file is re-read each time). */
  login: () => Promise<LoginResult>;
  report: TokenReport;
  logger: Logger;
  rules: ScheduleRules;
  /**
   * Called after each new login (not the start-up one): what the old token created (the
   * database credentials' lease) ends with it, so it must be had again with the new one.
   */
  onNewLogin?: () => void;
  /** A monotonic clock: expiry is measured locally, never from server timestamps. */
  now?: () => number;
  wallClock?: () => number;
}

/** What every refused login tells the operator: what would fix it. */
const freshSecretId = 'traffic stays halted until an operator delivers a fresh secret id ' +
  '(VAULT_SECRET_ID_FILE or VAULT_WRAPPED_SECRET_ID_FILE)';

/**
 * The service logged in itself: it renews its token at about two thirds of the TTL, looks it
 * up between renewals at least every maximum check interval (so a revoked token is seen within
 * it), and logs in again with AppRole when Vault refuses the token or renewal stops extending
 * it. A login Vault refuses halts traffic, at once when the token is refused, at its known
 * expiry when the token still works.
 */
export class SdkTokenRenewer implements TokenKeeper {
  readonly #o: Required<SdkTokenRenewerOptions>;
  readonly #loop: CheckLoop;
  readonly #state: TokenState;
  #token = '';
  #loginTtlSeconds = 0;
  #renewAt = 0;
  /** Why only a new login helps now; undefined while renewal works. */
  #loginWhy: string | undefined;
  /** Why the last login failed, while it keeps failing: the cause reported at expiry. */
  #loginProblem: string | undefined;

  constructor(options: SdkTokenRenewerOptions) {
    this.#o = { now: () => performance.now(), wallClock: Date.now, onNewLogin: () => undefined, ...options };
    this.#loop = new CheckLoop(() => this.#step(), this.#o.now);
    this.#state = new TokenState(() => {
      if (this.#loginProblem !== undefined) {
        this.#o.report.invalid('vault_login_failed', `the token expired: ${this.#loginProblem}; ${freshSecretId}`);
      } else {
        this.#o.report.invalid('vault_token_expired', 'the token\'s known expiry passed without a successful renewal: ' +
          'Vault could not be reached');
      }
    }, this.#o.now, this.#o.wallClock);
  }

  /** The start-up login verified the token: it is adopted, and the first wake is scheduled, not run now. */
  start(): Promise<void> {
    this.#adopt(this.#o.initial);
    return this.#loop.start(this.#nextWake());
  }

  async stop(): Promise<void> {
    await this.#loop.stop();
    this.#state.expiry.clear();
  }

  checkNow(): Promise<void> {
    return this.#loop.wake();
  }

  status(): TokenStatus {
    return this.#state.status('sdk', this.#loop.nextInMs());
  }

  /** The token the service's other calls use (secret reads, lease renewals). */
  get token(): string {
    return this.#token;
  }

  /** Revokes the token, and with it every lease it created (the database user): the last act of a shutdown. */
  async revoke(api: Pick<VaultApi, 'revokeSelf'>): Promise<void> {
    await this.stop();
    try {
      await api.revokeSelf(this.#token);
    } catch (error) {
      // Refused: it is revoked or expired already, and its leases went with it.
      if (!isTokenRefused(error)) throw error;
      this.#o.logger.info({ problem: failureText(error) }, 'the service\'s Vault token was already revoked or expired');
      return;
    }
    this.#o.logger.info('revoked the service\'s Vault token and the leases it held');
  }

  async #step(): Promise<number> {
    const action = sdkAction(this.#o.now(), this.#renewAt, this.#loginWhy !== undefined, this.#o.rules);
    try {
      if (action === 'login') return await this.#loginAgain(this.#loginWhy ?? 'a new login is due', true);
      if (action === 'check') return await this.#lookup();
      return await this.#renew();
    } catch (error) {
      // Refusals are handled where they happen: any other failure says nothing about the
      // token (an outage, a rate limit, a standby) and is retried.
      const delay = retryDelayMs(this.#state.failures++, this.#o.rules, describeVaultError(error).retryAfterMs);
      this.#o.logger.warn({ action, problem: failureText(error), retryInMs: delay, expiresInMs: this.#state.expiry.remainingMs() ?? null },
        'could not reach Vault to keep the token; serving from the last good configuration until its known expiry');
      return delay;
    }
  }

  async #lookup(): Promise<number> {
    try {
      const info = await this.#o.api.lookupSelf(this.#token);
      this.#verified(info.ttlSeconds, info.renewable);
      return this.#nextWake();
    } catch (error) {
      if (!isTokenRefused(error)) throw error;
      this.#state.refused();
      return await this.#loginAgain(`Vault refused the service's token (${failureText(error)})`, false);
    }
  }

  async #renew(): Promise<number> {
    let renewed: LoginResult;
    try {
      renewed = await this.#o.api.renewSelf(this.#token);
    } catch (error) {
      if (!isTokenRefused(error)) throw error;
      this.#state.refused();
      return await this.#loginAgain(`renewal refused (${failureText(error)})`, false);
    }
    this.#verified(renewed.ttlSeconds, renewed.renewable);
    if (renewalCapped(renewed.ttlSeconds, this.#loginTtlSeconds, renewed.renewable)) {
      this.#loginWhy = renewed.renewable
        ? `renewal no longer extends the TTL (${renewed.ttlSeconds} s left of max TTL)` : 'the token is not renewable';
      // Log in again now, while this token still works.
      return await this.#loginAgain(this.#loginWhy, true);
    }
    this.#renewAt = this.#o.now() + renewalDelayMs(renewed.ttlSeconds * 1000, this.#o.rules);
    return this.#nextWake();
  }

  /** `tokenStillValid`: the current token works until its known expiry, so a refused login need not halt yet. */
  async #loginAgain(why: string, tokenStillValid: boolean): Promise<number> {
    this.#o.logger.info({ why }, 'logging in to Vault again with AppRole');
    let login: LoginResult;
    try {
      login = await this.#o.login();
    } catch (error) {
      if (isTransient(error)) throw error;
      const status = describeVaultError(error).status;
      this.#loginProblem = `${why}, and AppRole login failed: ${error instanceof Error && status === undefined ? error.message : failureText(error)}`;
      // Due again at once: the next wake tries the login again.
      this.#renewAt = this.#o.now();
      if (tokenStillValid && this.#state.expiry.remainingMs() !== undefined) {
        this.#o.logger.error({ problem: this.#loginProblem }, 'cannot log in again; traffic halts when the current token expires');
      } else {
        this.#state.expiry.clear();
        this.#o.report.invalid('vault_login_failed', `${this.#loginProblem}; ${freshSecretId}`);
      }
      return retryDelayMs(this.#state.failures++, this.#o.rules);
    }
    this.#adopt(login);
    this.#o.logger.info({ ttlSeconds: login.ttlSeconds }, 'logged in to Vault again');
    this.#o.onNewLogin();
    return this.#nextWake();
  }

  #adopt(login: LoginResult): void {
    this.#token = login.token;
    this.#loginTtlSeconds = login.ttlSeconds;
    this.#loginProblem = undefined;
    this.#loginWhy = undefined;
    this.#verified(login.ttlSeconds, login.renewable);
    this.#renewAt = this.#o.now() + renewalDelayMs(login.ttlSeconds * 1000, this.#o.rules);
    if (!login.renewable) this.#loginWhy = 'the token is not renewable';
  }

  #verified(ttlSeconds: number, renewable: boolean): void {
    this.#state.verified(ttlSeconds, renewable);
    this.#o.report.valid(ttlSeconds);
  }

  #nextWake(): number {
    return wakeDelayMs(this.#renewAt - this.#o.now(), this.#o.rules);
  }
}
