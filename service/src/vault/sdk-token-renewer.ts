import type { Logger } from '../log/logger.js';
import { LifetimeWatcher, type Finding, type Strategy, type Vouched } from './lifetime-watcher.js';
import type { TokenKeeper, TokenProblem, TokenReport, TokenStatus } from '../health/token-report.js';
import { renewalCapped, type ScheduleRules } from './token-schedule.js';
import type { LoginResult, VaultApi } from './vault-api.js';
import { failureText, isTokenRefused } from './vault-error.js';

export interface SdkTokenRenewerOptions {
  api: Pick<VaultApi, 'lookupSelf' | 'renewSelf'>;
  /** The login made at start-up, which verified the token. */
  initial: LoginResult;
  /** AppRole login with the secret id at hand (a secret id file is re-read each time). */
  login: () => Promise<LoginResult>;
  report: TokenReport;
  logger: Logger;
  rules: ScheduleRules;
  now?: () => number;
  wallClock?: () => number;
}

/** What every refused login tells the operator: what would fix it. */
const freshSecretId = 'traffic stays halted until an operator delivers a fresh secret id ' +
  '(VAULT_SECRET_ID_FILE or VAULT_WRAPPED_SECRET_ID_FILE)';

const vouched = (login: LoginResult): Vouched =>
  ({ kind: 'vouched', ttlSeconds: login.ttlSeconds, renewable: login.renewable, expires: true, fresh: true });

/**
 * The service's own token: looked up between renewals, renewed at the watcher's renewal time,
 * and replaced by a new AppRole login when Vault refuses it or renewal stops extending it.
 */
class ServiceToken implements Strategy<TokenProblem> {
  token: string;
  /** Called after each new login (not the start-up one). */
  readonly loginListeners = new Set<() => void>();
  #loginTtlSeconds: number;
  #renewable: boolean;
  readonly #o: SdkTokenRenewerOptions;

  constructor(options: SdkTokenRenewerOptions) {
    this.#o = options;
    this.token = options.initial.token;
    this.#loginTtlSeconds = options.initial.ttlSeconds;
    this.#renewable = options.initial.renewable;
  }

  describe(): string {
    return 'the service\'s Vault token';
  }

  async step(renewDue: boolean): Promise<Finding<TokenProblem>> {
    const { api } = this.#o;
    try {
      // A token that is not renewable is replaced at its renewal time, not renewed.
      if (renewDue && !this.#renewable) return { kind: 'replace', why: 'the token is not renewable' };
      if (!renewDue) {
        const info = await api.lookupSelf(this.token);
        return { kind: 'vouched', ttlSeconds: info.ttlSeconds, renewable: info.renewable, expires: true, fresh: false };
      }
      const { renewable, ttlSeconds } = await api.renewSelf(this.token);
      if (!renewalCapped(ttlSeconds, this.#loginTtlSeconds, renewable)) return { kind: 'vouched', ttlSeconds, renewable, expires: true, fresh: true };
      // Log in again now, while this token still works.
      const why = renewable ? `renewal no longer extends the TTL (${ttlSeconds} s left of max TTL)` : 'the token is not renewable';
      return { kind: 'vouched', ttlSeconds, renewable, expires: true, fresh: true, replace: why };
    } catch (error) {
      if (!isTokenRefused(error)) throw error;
      return { kind: 'refused', code: 'vault_token_invalid', reason: `Vault refused the service's token (${failureText(error)})` };
    }
  }

  async acquire(why: string): Promise<Vouched> {
    this.#o.logger.info({ why }, 'logging in to Vault again with AppRole');
    const login = await this.#o.login();
    this.token = login.token;
    this.#loginTtlSeconds = login.ttlSeconds;
    this.#renewable = login.renewable;
    for (const listener of this.loginListeners) listener();
    return vouched(login);
  }

  expired(acquireProblem: string | undefined): { code: TokenProblem; reason: string } {
    if (acquireProblem !== undefined) return { code: 'vault_login_failed', reason: `the token expired: ${acquireProblem}; ${freshSecretId}` };
    return { code: 'vault_token_expired', reason: 'the token\'s known expiry passed without a successful renewal: Vault could not be reached' };
  }

  acquireFailed(problem: string): { code: TokenProblem; reason: string } {
    return { code: 'vault_login_failed', reason: `${problem}; ${freshSecretId}` };
  }
}

/** The service logged in itself (SDK mode): its token, watched and renewed. */
export class SdkTokenRenewer implements TokenKeeper {
  readonly #token: ServiceToken;
  readonly #watcher: LifetimeWatcher<TokenProblem>;
  readonly #o: SdkTokenRenewerOptions;

  constructor(options: SdkTokenRenewerOptions) {
    this.#o = options;
    this.#token = new ServiceToken(options);
    this.#watcher = new LifetimeWatcher({ ...options, strategy: this.#token });
  }

  /** The start-up login verified the token: it is adopted, and the first wake is scheduled, not run now. */
  start(): Promise<void> {
    return this.#watcher.start(vouched(this.#o.initial));
  }

  stop(): Promise<void> {
    return this.#watcher.stop();
  }

  checkNow(): Promise<void> {
    return this.#watcher.checkNow();
  }

  status(): TokenStatus {
    return { mode: 'sdk', ...this.#watcher.status() };
  }

  /**
   * Calls `listener` after each new login (not the start-up one): what the old token created
   * (the database credentials' lease) ends with it. Returns the unsubscribe.
   */
  onNewLogin(listener: () => void): () => void {
    this.#token.loginListeners.add(listener);
    return () => { this.#token.loginListeners.delete(listener); };
  }

  /** The token the service's other calls use (secret reads, lease renewals). */
  get token(): string {
    return this.#token.token;
  }

  /** Revokes the token, and with it every lease it created (the database user): the last act of a shutdown. */
  async revoke(api: Pick<VaultApi, 'revokeSelf'>): Promise<void> {
    await this.stop();
    try {
      await api.revokeSelf(this.token);
    } catch (error) {
      // Refused: it is revoked or expired already, and its leases went with it.
      if (!isTokenRefused(error)) throw error;
      this.#o.logger.info({ problem: failureText(error) }, 'the service\'s Vault token was already revoked or expired');
      return;
    }
    this.#o.logger.info('revoked the service\'s Vault token and the leases it held');
  }
}
