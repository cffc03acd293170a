import type { Logger } from '../log/logger.js';
import type { TokenProblem } from '../report/token-report.js';
import type { Finding, Strategy } from './lifetime-watcher.js';
import type { VaultApi } from './vault-api.js';
import { failureText, isTokenRefused } from './vault-error.js';

export interface AgentTokenOptions {
  api: Pick<VaultApi, 'lookupSelf'>;
  /** The agent's token sink (VAULT_TOKEN_FILE), named in what is reported. */
  tokenFile: string;
  readToken: () => Promise<string | undefined>;
  logger: Logger;
}

/**
 * The agent's token: Vault Agent owns it and renews it; the service reads the agent's sink and
 * asks Vault about the token (lookup-self). The watcher's timing rule makes that at least every
 * maximum check interval, so a revoked token is seen within it. Replacing it is the agent's.
 */
export class AgentToken implements Strategy<TokenProblem> {
  #token: string | undefined;
  readonly #options: AgentTokenOptions;

  constructor(options: AgentTokenOptions) {
    this.#options = options;
  }

  describe(): string {
    return `the agent's token from ${this.#options.tokenFile}`;
  }

  async step(): Promise<Finding<TokenProblem>> {
    const { api, tokenFile, readToken, logger } = this.#options;
    const token = await readToken();
    if (token !== undefined && token !== this.#token) {
      if (this.#token !== undefined) logger.info({ file: tokenFile }, 'the agent wrote a new token');
      // The old token's known expiry stands until the new one is verified.
      this.#token = token;
    }
    if (this.#token === undefined) {
      return { kind: 'waiting', code: 'vault_token_missing', reason: `no token in ${tokenFile} (VAULT_TOKEN_FILE): is Vault Agent running?` };
    }
    try {
      const info = await api.lookupSelf(this.#token);
      return {
        kind: 'vouched', ttlSeconds: info.ttlSeconds, renewable: info.renewable, expires: info.expires ?? info.ttlSeconds > 0, fresh: true,
        ...(info.creationTtlSeconds === undefined ? {} : { fullTtlSeconds: info.creationTtlSeconds }),
      };
    } catch (error) {
      if (!isTokenRefused(error)) throw error;
      return {
        kind: 'refused', code: 'vault_token_invalid',
        reason: `Vault refused the agent's token from ${tokenFile} (${failureText(error)}). If only the token was revoked, ` +
          'the agent logs in again with its secret id and traffic resumes by itself; if the secret id was revoked too, ' +
          'traffic stays halted until an operator delivers a fresh secret id to the agent',
      };
    }
  }

  expired(): { code: TokenProblem; reason: string } {
    return {
      code: 'vault_token_expired',
      reason: `the known expiry of the agent's token from ${this.#options.tokenFile} passed without a successful check: ` +
        'Vault could not be reached to verify it',
    };
  }

  replaceFailed(problem: string): { code: TokenProblem; reason: string } {
    return { code: 'vault_token_invalid', reason: problem };
  }
}
