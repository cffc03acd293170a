import vault from 'node-vault';
import type { SecretRead } from '../config/snapshot.js';
import { vaultTransport } from './vault-transport.js';

export interface LoginResult {
  readonly token: string;
  readonly ttlSeconds: number;
  readonly renewable: boolean;
  readonly policies: readonly string[];
}

/** A lease as Vault reports it after a lookup or a renewal. */
export interface LeaseInfo {
  readonly ttlSeconds: number;
  readonly renewable: boolean;
}

export interface TokenInfo {
  readonly ttlSeconds: number;
  readonly renewable: boolean;
  readonly policies: readonly string[];
  /**
   * Whether the token has an expiry (`expire_time` set): at its last second a token's TTL reads
   * 0 as a root token's does. Absent (hand-written fakes): a TTL over 0 expires.
   */
  readonly expires?: boolean;
  /** The TTL it was created with (`creation_ttl`), which each renewal restores until the max TTL. */
  readonly creationTtlSeconds?: number;
  /** The last renewal (or the issue, before any); absent when Vault did not say. */
  readonly lastGrant?: TokenGrant;
}

/**
 * What the token's last renewal (or its issue) granted: `expire_time` less `last_renewal` (or
 * `issue_time`), two of Vault's own clock readings from one answer, so no clock of this machine
 * is compared with Vault's. `at` is Vault's timestamp, used only to tell one grant from the next.
 */
export interface TokenGrant {
  readonly at: string;
  readonly ttlSeconds: number;
}

export function lastGrant(data: { expire_time?: string | null; last_renewal?: string | null; issue_time?: string | null }): TokenGrant | undefined {
  const at = data.last_renewal ?? data.issue_time ?? '';
  const expire = Date.parse(data.expire_time ?? '');
  const granted = Date.parse(at);
  if (Number.isNaN(expire) || Number.isNaN(granted) || expire < granted) return undefined;
  return { at, ttlSeconds: Math.round((expire - granted) / 1000) };
}

/**
 * The few Vault calls the service makes, typed. Each call names the token it uses, so one
 * client serves the agent's token and the service's own without shared mutable state.
 */
export interface VaultApi {
  readonly addr: string;
  loginAppRole(roleId: string, secretId: string): Promise<LoginResult>;
  readKv(path: string, token: string): Promise<SecretRead>;
  /** A dynamic secret (database credentials): its data and the lease Vault put on it. */
  readDynamic(path: string, token: string): Promise<SecretRead>;
  lookupLease(leaseId: string, token: string): Promise<LeaseInfo>;
  /** Asks for `incrementSeconds` more; Vault answers with what it granted (the max TTL caps it). */
  renewLease(leaseId: string, token: string, incrementSeconds: number): Promise<LeaseInfo>;
  /** Revokes the token and, with it, every lease it created. */
  revokeSelf(token: string): Promise<void>;
  /** The path a wrapping token was created at; fails when it is unknown, used or expired. */
  wrappingCreationPath(wrappingToken: string): Promise<string>;
  unwrapSecretId(wrappingToken: string): Promise<string>;
  lookupSelf(token: string): Promise<TokenInfo>;
  renewSelf(token: string): Promise<LoginResult>;
}

interface AuthBody {
  auth: { client_token: string; lease_duration: number; renewable: boolean; policies: string[] };
}

function loginResult(body: AuthBody): LoginResult {
  return {
    token: body.auth.client_token,
    ttlSeconds: body.auth.lease_duration,
    renewable: body.auth.renewable,
    policies: body.auth.policies,
  };
}

export interface VaultApiOptions {
  readonly timeoutMs: number;
  /** PEM of the CA Vault's certificate chains to, when it is not one the system trusts. */
  readonly ca?: string | undefined;
  readonly skipVerify?: boolean;
  /** Sent as X-Vault-Namespace on every call; empty or absent: the root namespace. */
  readonly namespace?: string;
}

/** node-vault's debug output prints request bodies (role_id, secret_id) whatever DEBUG says: it is silenced. */
const silent = (): void => undefined;

export function nodeVaultApi(addr: string, options: VaultApiOptions = { timeoutMs: 5000 }): VaultApi {
  const client = vault({
    endpoint: addr, apiVersion: 'v1', debug: silent,
    'request-promise': vaultTransport({ timeoutMs: options.timeoutMs, ca: options.ca, skipVerify: options.skipVerify ?? false }),
  });
  // node-vault falls back to VAULT_TOKEN from the environment; this client only ever uses
  // the token each call names.
  client.token = '';
  // It also takes VAULT_NAMESPACE from the environment: the service's own setting decides instead,
  // checked at start, so a variable nobody validated cannot send every call elsewhere
  // (a property its types leave out).
  (client as typeof client & { namespace: string }).namespace = options.namespace ?? '';
  const as = (token: string) => ({ headers: { 'X-Vault-Token': token } });

  return {
    addr,
    async loginAppRole(roleId, secretId) {
      return loginResult((await client.write('auth/approle/login', { role_id: roleId, secret_id: secretId })) as AuthBody);
    },
    async readKv(path, token) {
      const body = (await client.read(path, as(token))) as {
        data: { data: Record<string, unknown>; metadata: { version: number } };
      };
      return { path, version: body.data.metadata.version, data: body.data.data };
    },
    async readDynamic(path, token) {
      const body = (await client.read(path, as(token))) as {
        lease_id: string; lease_duration: number; renewable: boolean; data: Record<string, unknown>;
      };
      return { path, lease: { id: body.lease_id, durationSeconds: body.lease_duration, renewable: body.renewable }, data: body.data };
    },
    async lookupLease(leaseId, token) {
      const body = (await client.request({
        path: '/sys/leases/lookup', method: 'PUT', json: { lease_id: leaseId }, ...as(token),
      })) as { data: { ttl: number; renewable: boolean } };
      return { ttlSeconds: body.data.ttl, renewable: body.data.renewable };
    },
    async renewLease(leaseId, token, incrementSeconds) {
      const body = (await client.request({
        path: '/sys/leases/renew', method: 'PUT', json: { lease_id: leaseId, increment: incrementSeconds }, ...as(token),
      })) as { lease_duration: number; renewable: boolean };
      return { ttlSeconds: body.lease_duration, renewable: body.renewable };
    },
    async revokeSelf(token) {
      await client.request({ path: '/auth/token/revoke-self', method: 'POST', json: {}, ...as(token) });
    },
    async wrappingCreationPath(wrappingToken) {
      const body = (await client.write('sys/wrapping/lookup', { token: wrappingToken })) as {
        data: { creation_path: string };
      };
      return body.data.creation_path;
    },
    async unwrapSecretId(wrappingToken) {
      const body = (await client.request({ path: '/sys/wrapping/unwrap', method: 'POST', ...as(wrappingToken) })) as {
        data: { secret_id: string };
      };
      return body.data.secret_id;
    },
    async lookupSelf(token) {
      const body = (await client.request({ path: '/auth/token/lookup-self', method: 'GET', ...as(token) })) as {
        data: {
          ttl: number; renewable: boolean; policies: string[]; expire_time: string | null; creation_ttl: number;
          issue_time?: string | null; last_renewal?: string | null;
        };
      };
      const grant = lastGrant(body.data);
      return {
        ttlSeconds: body.data.ttl, renewable: body.data.renewable, policies: body.data.policies, expires: body.data.expire_time !== null,
        creationTtlSeconds: body.data.creation_ttl, ...(grant === undefined ? {} : { lastGrant: grant }),
      };
    },
    async renewSelf(token) {
      // Through request(), not tokenRenewSelf(): that one keeps the renewed token as the
      // client's default, which every later call without a token of its own would send.
      return loginResult((await client.request({ path: '/auth/token/renew-self', method: 'POST', json: {}, ...as(token) })) as AuthBody);
    },
  };
}
