import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cliAs, runScript, type ServerNode } from './bao-server.js';
import { registerSecret } from './leak-scan.js';
import { addIdentityProvider, type IdentityProvider, type ProviderOptions } from './sign-in.js';
import { tempDir } from './temp-dirs.js';

/**
 * What production does when it needs root once more (scripts/prod/generate-root.sh): the admin's
 * token and a quorum of unseal keys make a root token, `use` runs with it, and it is revoked
 * whatever `use` did.
 */
export async function withRegeneratedRoot<T>(
  node: ServerNode, adminToken: string, unsealKeys: readonly string[], use: (rootToken: string) => Promise<T>,
): Promise<T> {
  const file = join(await tempDir('root'), 'root-token');
  const made = await runScript('scripts/prod/generate-root.sh', [file], node.cliEnv({ VAULT_TOKEN: adminToken }), `${unsealKeys.join('\n')}\n`);
  if (made.code !== 0) throw new Error(`generate-root.sh failed (${made.code}): ${made.stderr.trim()}`);
  const rootToken = (await readFile(file, 'utf8')).trim();
  registerSecret('regenerated root token', rootToken);
  let result: { value: T } | { error: unknown };
  try {
    result = { value: await use(rootToken) };
  } catch (error) {
    result = { error };
  }
  const revoked = await cliAs(node, rootToken, ['token', 'revoke', '-self']);
  if ('error' in result) throw result.error;
  if (revoked.code !== 0) throw new Error(`the regenerated root token was not revoked: ${revoked.stderr.trim()}`);
  return result.value;
}

/**
 * Vault's OpenID Connect provider (scripts/demo-identity.sh) on a production server whose root
 * token first-bootstrap.sh revoked: the script runs with a root token regenerated for it
 * (withRegeneratedRoot), which is gone again when this returns. `credentials()` answers what the
 * script wrote, read while the root token lived.
 */
export async function addIdentityProviderAfterBootstrap(
  node: ServerNode, adminToken: string, unsealKeys: readonly string[], redirectUrl: string, options: ProviderOptions = {},
): Promise<IdentityProvider> {
  return withRegeneratedRoot(node, adminToken, unsealKeys, async (rootToken) => {
    const provider = await addIdentityProvider({ addr: node.addr, rootToken, dir: node.dir }, redirectUrl, options);
    const credentials = await provider.credentials();
    return { ...provider, credentials: () => Promise.resolve(credentials) };
  });
}
