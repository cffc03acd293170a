import type { VaultApi } from '../vault/vault-api.js';
import { describeVaultError } from '../vault/vault-error.js';
import type { ServiceMetrics, VaultOutcome } from './service-metrics.js';

/** The class of a failed call, for the `outcome` label. */
export function vaultOutcome(error: unknown): VaultOutcome {
  const { unreachable, status } = describeVaultError(error);
  if (unreachable) return 'unreachable';
  if (status === 403) return 'refused';
  if (status === 429) return 'rate_limited';
  if (status !== undefined && (status >= 500 || status === 412)) return 'unavailable';
  return 'rejected';
}

/** The same VaultApi, each call counted and timed under its operation's name. */
export function instrumentVaultApi(api: VaultApi, metrics: ServiceMetrics): VaultApi {
  const measured = <T>(operation: string, call: () => Promise<T>) => metrics.vaultCall(operation, call, vaultOutcome);
  return {
    addr: api.addr,
    loginAppRole: (roleId, secretId) => measured('login', () => api.loginAppRole(roleId, secretId)),
    readKv: (path, token) => measured('read', () => api.readKv(path, token)),
    readDynamic: (path, token) => measured('read-dynamic', () => api.readDynamic(path, token)),
    lookupLease: (leaseId, token) => measured('lease-lookup', () => api.lookupLease(leaseId, token)),
    renewLease: (leaseId, token, increment) => measured('lease-renew', () => api.renewLease(leaseId, token, increment)),
    revokeSelf: (token) => measured('revoke-self', () => api.revokeSelf(token)),
    wrappingCreationPath: (wrappingToken) => measured('wrapping-lookup', () => api.wrappingCreationPath(wrappingToken)),
    unwrapSecretId: (wrappingToken) => measured('unwrap', () => api.unwrapSecretId(wrappingToken)),
    lookupSelf: (token) => measured('lookup-self', () => api.lookupSelf(token)),
    renewSelf: (token) => measured('renew-self', () => api.renewSelf(token)),
  };
}
