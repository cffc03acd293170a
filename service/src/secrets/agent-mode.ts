import { readFile } from 'node:fs/promises';
import type { SnapshotHolder } from '../config/snapshot-holder.js';
import type { Settings } from '../config/settings.js';
import { StartupError } from '../config/startup-error.js';
import type { Logger } from '../log/logger.js';
import type { StopList } from '../process/graceful-shutdown.js';
import type { StopName } from '../process/stop-order.js';
import type { AgentStatus } from '../report/agent-report.js';
import type { TokenProblem, TokenReport } from '../report/token-report.js';
import { AgentToken } from '../vault/agent-token.js';
import { removeCredentialVariables } from '../vault/approle-credentials.js';
import { LifetimeWatcher } from '../vault/lifetime-watcher.js';
import type { ScheduleRules } from '../vault/token-schedule.js';
import type { VaultApi } from '../vault/vault-api.js';
import { AgentFileSource, type AgentFileStats } from './agent-file-source.js';
import { watchFile } from './file-watch.js';

/** What the composition root hands a secrets mode. */
export interface ModeContext {
  readonly settings: Settings;
  readonly env: NodeJS.ProcessEnv;
  readonly api: VaultApi;
  readonly holder: SnapshotHolder;
  readonly report: TokenReport;
  readonly rules: ScheduleRules;
  readonly logger: Logger;
  readonly started: StopList<StopName>;
}

/** What a mode gives back: the first secrets are loaded; `start` starts keeping them. */
export interface SecretsSource {
  /** The token's watcher: the agent's token, or the service's own. */
  readonly token: LifetimeWatcher<TokenProblem>;
  /** The token the service's other calls use (the lease checks). */
  currentToken(): Promise<string | undefined>;
  /** SDK mode: new database credentials now. Absent in agent mode: the agent renders them. */
  readonly replaceCredentials?: (why: string) => Promise<void>;
  /** SDK mode: calls `listener` after each new login; returns the unsubscribe. */
  readonly onNewLogin?: (listener: () => void) => () => void;
  /** Agent mode: whether Vault Agent renewed its token in time. */
  readonly agent?: () => AgentStatus;
  fileStats(): AgentFileStats | null;
  start(): Promise<void>;
}

async function readTokenFile(file: string): Promise<string | undefined> {
  try {
    const token = (await readFile(file, 'utf8')).trim();
    return token === '' ? undefined : token;
  } catch {
    return undefined;
  }
}

/** Agent mode: the first valid render loaded, its file and the token sink watched, the agent's token checked. */
export async function agentMode({ settings, env, api, holder, report, rules, logger, started }: ModeContext): Promise<SecretsSource> {
  // The agent holds the credentials: any left in this environment are only a risk.
  removeCredentialVariables(env);
  if (settings.vaultAddr === '') throw new StartupError('VAULT_ADDR is not set: the service checks the agent\'s token with Vault');
  const source = new AgentFileSource({
    file: settings.secretsFile, scope: settings, credentials: settings.databaseCredentials, holder, logger, watchFile,
  });
  started.add('rendered file watch', () => source.stop());
  source.start();
  try {
    await source.firstSnapshot(settings.secretsWaitMs);
  } catch (error) {
    throw new StartupError((error as Error).message);
  }
  await source.watching();
  const file = settings.vaultTokenFile;
  const readToken = () => readTokenFile(file);
  const agentToken = new AgentToken({ api, tokenFile: file, readToken, logger });
  const token = new LifetimeWatcher({ strategy: agentToken, report, logger, rules });
  started.add('token checks', () => token.stop());
  // The agent writes a new token after each login: checked at once.
  const sink = watchFile(file, {
    onChange: () => { void token.checkNow(); },
    onError: (error) => { logger.warn({ err: error.message }, 'watching the token sink failed; scheduled checks go on'); },
    debounceMs: 25,
  });
  started.add('token sink watch', () => sink.close());
  await sink.ready;
  return { token, currentToken: readToken, agent: () => agentToken.status(), fileStats: () => source.stats(), start: () => token.start() };
}
