import type { Settings } from '../config/settings.js';
import { StartupError } from '../config/startup-error.js';

export type SecretsMode = 'agent' | 'sdk';

/**
 * SECRETS_MODE=auto: agent mode when the agent's files are there, SDK mode when a role id
 * is given, and otherwise a refusal that lists everything that was looked for.
 */
export function selectMode(
  settings: Pick<Settings, 'secretsMode' | 'secretsFile' | 'vaultTokenFile'>,
  env: NodeJS.ProcessEnv,
  exists: (path: string) => boolean,
): SecretsMode {
  if (settings.secretsMode !== 'auto') return settings.secretsMode;
  if (exists(settings.secretsFile) || exists(settings.vaultTokenFile)) return 'agent';
  if ((env.VAULT_ROLE_ID ?? '') !== '' || (env.VAULT_ROLE_ID_FILE ?? '') !== '') return 'sdk';
  throw new StartupError(
    `SECRETS_MODE=auto found no way to get secrets: no rendered file at ${settings.secretsFile} (SECRETS_FILE), ` +
    `no agent token at ${settings.vaultTokenFile} (VAULT_TOKEN_FILE), and neither VAULT_ROLE_ID nor ` +
    'VAULT_ROLE_ID_FILE is set');
}
