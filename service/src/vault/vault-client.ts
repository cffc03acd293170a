import { readFile } from 'node:fs/promises';
import type { Settings } from '../config/settings.js';
import { StartupError } from '../config/startup-error.js';
import type { Logger } from '../log/logger.js';
import { nodeVaultApi, type VaultApi } from './vault-api.js';

/** The Vault client the settings describe: its CA read once, a loud warning when verification is off. */
export async function vaultApiFor(settings: Settings, logger: Logger): Promise<VaultApi> {
  let ca: string | undefined;
  if (settings.vaultCaCert !== '') {
    try {
      ca = await readFile(settings.vaultCaCert, 'utf8');
    } catch (error) {
      throw new StartupError(`VAULT_CACERT names ${settings.vaultCaCert}, which cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  if (settings.vaultSkipVerify) {
    logger.warn({ vaultAddr: settings.vaultAddr }, 'VAULT_SKIP_VERIFY=true: Vault\'s TLS certificate is not verified; ' +
      'anyone on the network path can read the secrets and the token');
  }
  return nodeVaultApi(settings.vaultAddr, {
    timeoutMs: settings.vaultRequestTimeoutMs, ca, skipVerify: settings.vaultSkipVerify, namespace: settings.vaultNamespace,
  });
}
