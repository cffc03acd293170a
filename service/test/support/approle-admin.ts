import { expect } from 'chai';
import type { DevServer } from './bao.js';
import { vaultData, vaultRequest } from './vault-http.js';

/** An operator's moves against the service's AppRole, with the dev server's root token. */

/** Revokes every token AppRole has issued: what an operator does first when a service leaks. */
export async function revokeAppRoleTokens(server: Pick<DevServer, 'addr' | 'rootToken'>): Promise<void> {
  const response = await vaultRequest(server.addr, server.rootToken, 'PUT', 'sys/leases/revoke-prefix/auth/approle/login');
  expect(response.status).to.equal(204);
}

/** Destroys every secret id of the role, by accessor: nothing can log in with them any more. */
export async function destroySecretIds(server: Pick<DevServer, 'addr' | 'rootToken'>): Promise<number> {
  const listed = await vaultData<{ keys: string[] }>(server.addr, server.rootToken, 'GET', 'auth/approle/role/saas-app-dev/secret-id?list=true');
  for (const accessor of listed.keys) {
    await vaultData(server.addr, server.rootToken, 'POST', 'auth/approle/role/saas-app-dev/secret-id-accessor/destroy',
      { secret_id_accessor: accessor });
  }
  return listed.keys.length;
}

/** A fresh response-wrapped secret id, as a trusted orchestrator delivers it. */
export async function wrappedSecretId(server: Pick<DevServer, 'addr' | 'rootToken'>): Promise<string> {
  const fresh = await fetch(`${server.addr}/v1/auth/approle/role/saas-app-dev/secret-id`, {
    method: 'POST', headers: { 'X-Vault-Token': server.rootToken, 'X-Vault-Wrap-TTL': '120s' },
  });
  return ((await fresh.json()) as { wrap_info: { token: string } }).wrap_info.token;
}

/**
 * Lifts Vault's user lockout from the role id: after 5 failed logins in a row (the dead
 * secret id, retried) Vault refuses every login for that role id for 15 minutes, a fresh
 * secret id included, with 403.
 */
export async function unlockRoleId(server: Pick<DevServer, 'addr' | 'rootToken'>, roleId: string): Promise<void> {
  const mounts = await vaultData<Record<string, { accessor: string }>>(server.addr, server.rootToken, 'GET', 'sys/auth');
  const accessor = mounts['approle/']?.accessor;
  if (accessor === undefined) throw new Error('no approle/ mount');
  await vaultData(server.addr, server.rootToken, 'POST', `sys/locked-users/${accessor}/unlock/${roleId.trim()}`);
}
