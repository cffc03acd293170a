import { performance } from 'node:perf_hooks';
import type { Logger } from '../log/logger.js';
import type { AgentStatus } from '../report/agent-report.js';
import type { TokenProblem } from '../report/token-report.js';
import { readGrant, renewalDueInMs, type GrantReading } from './agent-renewal.js';
import type { Finding, Strategy } from './lifetime-watcher.js';
import type { TokenInfo, VaultApi } from './vault-api.js';
import { failureText, isTokenRefused } from './vault-error.js';

export interface AgentTokenOptions {
  api: Pick<VaultApi, 'lookupSelf'>;
  /** The agent's token sink (VAULT_TOKEN_FILE), named in what is reported. */
  tokenFile: string;
  readToken: () => Promise<string | undefined>;
  logger: Logger;
  /** A monotonic clock, for when the agent's renewal is due. */
  now?: () => number;
}

/**
 * The agent's token: Vault Agent owns it and renews it; the service reads the agent's sink and
 * asks Vault about the token (lookup-self). The watcher's timing rule makes that at least every
 * maximum check interval, so a revoked token is seen within it. Replacing it is the agent's.
 *
 * Each lookup also says when the agent last renewed it (agent-renewal.ts): the agent renews on a
 * known rule, so a renewal that does not come in time means the agent is dead, stuck or cannot
 * reach Vault. The token is looked up again at the moment the renewal is due, and the agent is
 * called overdue (logged once, shown in /status and /metrics) until it renews again.
 */
export class AgentToken implements Strategy<TokenProblem> {
  #token: string | undefined;
  #reading: GrantReading | undefined;
  #overdue = false;
  readonly #options: AgentTokenOptions;
  readonly #now: () => number;

  constructor(options: AgentTokenOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Whether the agent renewed its token in time, as of the last lookup. */
  status(): AgentStatus {
    const reading = this.#reading;
    if (reading === undefined) return { state: 'unknown', lastRenewalSecondsAgo: null, renewalDueInSeconds: null };
    const now = this.#now();
    return {
      state: this.#overdue ? 'overdue' : 'on_time',
      lastRenewalSecondsAgo: Math.max(0, Math.floor((now - reading.latestAt) / 1000)),
      renewalDueInSeconds: Math.round(renewalDueInMs(reading, now) / 100) / 10,
    };
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
      const dueInMs = this.#readRenewal(info);
      return {
        kind: 'vouched', ttlSeconds: info.ttlSeconds, renewable: info.renewable, expires: info.expires ?? info.ttlSeconds > 0, fresh: true,
        ...(info.creationTtlSeconds === undefined ? {} : { fullTtlSeconds: info.creationTtlSeconds }),
        // Looked up again when the agent's renewal is due, to see it late at once.
        ...(dueInMs === undefined || dueInMs <= 0 ? {} : { checkAgainInMs: dueInMs + 1 }),
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

  /** Folds the lookup into when the agent's renewal is due; returns the milliseconds until then (none when Vault did not say). */
  #readRenewal(info: TokenInfo): number | undefined {
    const { lastGrant, creationTtlSeconds } = info;
    if (lastGrant === undefined || creationTtlSeconds === undefined || creationTtlSeconds <= 0 || info.expires === false) {
      this.#reading = undefined;
      return undefined;
    }
    const now = this.#now();
    this.#reading = readGrant(this.#reading, lastGrant, info.ttlSeconds, creationTtlSeconds, now);
    const dueInMs = renewalDueInMs(this.#reading, now);
    const overdue = dueInMs <= 0;
    if (overdue !== this.#overdue) {
      const { logger, tokenFile } = this.#options;
      const sinceSeconds = Math.floor((now - this.#reading.latestAt) / 1000);
      if (overdue) {
        logger.error({ file: tokenFile, lastRenewalSecondsAgo: sinceSeconds, expiresInSeconds: info.ttlSeconds },
          'Vault Agent is overdue: it has not renewed its token in time. Is it running, and can it reach Vault? ' +
          'Traffic goes on until the token\'s known expiry, then halts');
      } else {
        logger.info({ file: tokenFile }, 'Vault Agent renewed its token again: no longer overdue');
      }
      this.#overdue = overdue;
    }
    return dueInMs;
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
