import type { Logger } from '../log/logger.js';
import type { TokenProblem } from '../report/token-report.js';
import type { Finding, Strategy, Vouched } from './lifetime-watcher.js';
import { renewalCapped } from './token-schedule.js';
import type { LoginResult, VaultApi } from './vault-api.js';
import { failureText, isTokenRefused } from './vault-error.js';

export interface ServiceTokenOptions {
  api: Pick<VaultApi, 'lookupSelf' | 'renewSelf' | 'revokeSelf'>;
  /** The login made at start-up, which verified the token. */
  initial: LoginResult;
  /** AppRole login with the secret id at hand (a secret id file is re-read each time). */
  login: () => Promise<LoginResult>;
  logger: Logger;
}

/** What every refused login tells the operator: what would fix it. */
const freshSecretId = 'traffic stays halted until an operator delivers a fresh secret id ' +
  '(VAULT_SECRET_ID_FILE or VAULT_WRAPPED_SECRET_ID_FILE)';

/** The watcher's first finding: the start-up login verified the token, so the first wake is its renewal. */
export const loginVouched = (login: LoginResult): Vouched =>
  ({ kind: 'vouched', ttlSeconds: login.ttlSeconds, renewable: login.renewable, expires: true, fresh: true });

/**
 * The service's own token (SDK mode): looked up between renewals, renewed at the watcher's
 * renewal time, and replaced by a new AppRole login when Vault refuses it or renewal stops
 * extending it.
 */
export class ServiceToken implements Strategy<TokenProblem> {
  /** The token the service's other calls use (secret reads, lease renewals). */
  token: string;
  readonly #loginListeners = new Set<() => void>();
  #loginTtlSeconds: number;
  #renewable: boolean;
  readonly #options: ServiceTokenOptions;

  constructor(options: ServiceTokenOptions) {
    this.#options = options;
    this.token = options.initial.token;
    this.#loginTtlSeconds = options.initial.ttlSeconds;
    this.#renewable = options.initial.renewable;
  }

  describe(): string {
    return 'the service\'s Vault token';
  }

  async step(renewDue: boolean): Promise<Finding<TokenProblem>> {
    const { api } = this.#options;
    try {
      // A token that is not renewable is replaced at its renewal time, not renewed.
      if (renewDue && !this.#renewable) return { kind: 'outdated', why: 'the token is not renewable' };
      if (!renewDue) {
        const info = await api.lookupSelf(this.token);
        return { kind: 'vouched', ttlSeconds: info.ttlSeconds, renewable: info.renewable, expires: true, fresh: false };
      }
      const { renewable, ttlSeconds } = await api.renewSelf(this.token);
      const renewed: Vouched = { kind: 'vouched', ttlSeconds, renewable, expires: true, fresh: true };
      if (!renewalCapped(ttlSeconds, this.#loginTtlSeconds, renewable)) return renewed;
      // Log in again now, while this token still works.
      const why = renewable ? `renewal no longer extends the TTL (${ttlSeconds} s left of max TTL)` : 'the token is not renewable';
      return { kind: 'outdated', why, vouched: renewed };
    } catch (error) {
      if (!isTokenRefused(error)) throw error;
      return { kind: 'refused', code: 'vault_token_invalid', reason: `Vault refused the service's token (${failureText(error)})` };
    }
  }

  async replace(why: string): Promise<Vouched> {
    this.#options.logger.info({ why }, 'logging in to Vault again with AppRole');
    const login = await this.#options.login();
    this.token = login.token;
    this.#loginTtlSeconds = login.ttlSeconds;
    this.#renewable = login.renewable;
    for (const listener of this.#loginListeners) listener();
    return loginVouched(login);
  }

  expired(replaceProblem: string | undefined): { code: TokenProblem; reason: string } {
    if (replaceProblem !== undefined) return { code: 'vault_login_failed', reason: `the token expired: ${replaceProblem}; ${freshSecretId}` };
    return { code: 'vault_token_expired', reason: 'the token\'s known expiry passed without a successful renewal: Vault could not be reached' };
  }

  replaceFailed(problem: string): { code: TokenProblem; reason: string } {
    return { code: 'vault_login_failed', reason: `${problem}; ${freshSecretId}` };
  }

  /**
   * Calls `listener` after each new login (not the start-up one): what the old token created
   * (the database credentials' lease) ends with it. Returns the unsubscribe.
   */
  onNewLogin(listener: () => void): () => void {
    this.#loginListeners.add(listener);
    return () => { this.#loginListeners.delete(listener); };
  }

  /**
   * Revokes the token, and with it every lease it created (the database user): the last act of
   * a shutdown, once its watcher has stopped.
   */
  async revoke(): Promise<void> {
    try {
      await this.#options.api.revokeSelf(this.token);
    } catch (error) {
      // Refused: it is revoked or expired already, and its leases went with it.
      if (!isTokenRefused(error)) throw error;
      this.#options.logger.info({ problem: failureText(error) }, 'the service\'s Vault token was already revoked or expired');
      return;
    }
    this.#options.logger.info('revoked the service\'s Vault token and the leases it held');
  }
}
