import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { nodeVaultApi } from '../../src/vault/vault-api.js';
import { describeVaultError } from '../../src/vault/vault-error.js';
import { startDevServer, type DevServer } from '../support/bao.js';
import { generateTls, startServerNode, type ServerNode } from '../support/bao-server.js';
import { runBootstrap } from '../support/bootstrap.js';
import { spawnService, startService } from '../support/service.js';
import { tempDir } from '../support/temp-dirs.js';
import { unwrapSecretId, vaultData } from '../support/vault-http.js';

describe('vault-api: what node-vault would have leaked, against real bao servers', function () {
  this.timeout(60_000);

  describe('DEBUG', function () {
    let server: DevServer;
    before(async function () {
      server = await startDevServer();
    });
    after(async function () {
      await server.stop();
    });

    it('DEBUG=* prints no role id, secret id or token: node-vault\'s debug output is silenced', async function () {
      const credentials = await tempDir('credentials');
      const run = await runBootstrap(server, 'dev', credentials, { ROLE_SECRET_ID_NUM_USES: '0' });
      expect(run.code, run.stderr).to.equal(0);
      const roleId = (await readFile(join(credentials, 'role-id'), 'utf8')).trim();
      const secretId = await unwrapSecretId(server.addr, await readFile(join(credentials, 'secret-id'), 'utf8'));
      const service = await startService({
        SECRETS_MODE: 'sdk', APP_ENV: 'dev', VAULT_ADDR: server.addr, VAULT_ROLE_ID: roleId, VAULT_SECRET_ID: secretId,
        TOKEN_CHECK_MAX_INTERVAL_MS: '300', DEBUG: '*', DEBUG_COLORS: 'no',
      });
      // A few lookups of the token too, each a debug line in node-vault.
      await new Promise((r) => setTimeout(r, 1000));
      await service.process.stop();
      const output = await service.process.log();
      expect(output).to.contain('"msg":"logged in to Vault with AppRole"');
      for (const [name, value] of [['role id', roleId], ['secret id', secretId]] as const) {
        expect(output.includes(value), `${name} in stdout or stderr`).to.be.false;
      }
      expect(output, 'no debug line from node-vault at all').to.not.match(/node-vault/);
    });

    it('sends no namespace the service was not given: node-vault would take VAULT_NAMESPACE from the environment', async function () {
      const saved = process.env.VAULT_NAMESPACE;
      process.env.VAULT_NAMESPACE = 'nowhere';
      try {
        // In a namespace that does not exist, the root token's lookup would fail.
        expect((await nodeVaultApi(server.addr).lookupSelf(server.rootToken)).policies).to.include('root');
        const error = await nodeVaultApi(server.addr, { timeoutMs: 5000, namespace: 'nowhere' }).lookupSelf(server.rootToken)
          .catch((e: unknown) => e);
        expect(describeVaultError(error).status, 'the service\'s own setting is sent').to.be.at.least(400);
      } finally {
        if (saved === undefined) delete process.env.VAULT_NAMESPACE;
        else process.env.VAULT_NAMESPACE = saved;
      }
    });
  });

  describe('TLS verification', function () {
    let node: ServerNode;
    const saved = process.env.VAULT_SKIP_VERIFY;
    before(async function () {
      node = await startServerNode(await generateTls());
    });
    after(async function () {
      await node.stop();
      if (saved === undefined) delete process.env.VAULT_SKIP_VERIFY;
      else process.env.VAULT_SKIP_VERIFY = saved;
    });

    it('verifies Vault\'s certificate even when the environment says VAULT_SKIP_VERIFY=false (node-vault skipped it)', async function () {
      process.env.VAULT_SKIP_VERIFY = 'false';
      const error = await nodeVaultApi(node.addr).lookupSelf('any').catch((e: unknown) => e);
      const failure = describeVaultError(error);
      expect(failure).to.include({ unreachable: true, status: undefined });
      expect(failure.detail).to.match(/^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN)$/);
    });

    it('skips verification only when the service\'s own setting says so', async function () {
      const error = await nodeVaultApi(node.addr, { timeoutMs: 5000, skipVerify: true }).lookupSelf('any').catch((e: unknown) => e);
      // The handshake went through: the (uninitialised, sealed) server itself answered.
      expect(describeVaultError(error).status).to.equal(503);
    });

    it('the service warns at start when VAULT_SKIP_VERIFY=true', async function () {
      const service = await spawnService({
        SECRETS_MODE: 'sdk', APP_ENV: 'dev', VAULT_ADDR: node.addr, VAULT_ROLE_ID: 'r', VAULT_SECRET_ID: 's',
        VAULT_SKIP_VERIFY: 'true', VAULT_CONNECT_TIMEOUT_MS: '500',
      });
      expect(await service.process.exited).to.equal(1);
      const lines = (await service.process.log()).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines[0]).to.include({ level: 'warn' });
      expect(String(lines[0]?.msg)).to.match(/^VAULT_SKIP_VERIFY=true: Vault's TLS certificate is not verified/);
      // Past TLS, the sealed server answered 503: the failure is Vault's state, not the handshake.
      expect(String(lines.at(-1)?.reason)).to.contain('status 503');
    });
  });

  it('keeps Vault\'s Retry-After on a refused call (a real rate-limit quota)', async function () {
    const server = await startDevServer();
    try {
      await vaultData(server.addr, server.rootToken, 'POST', 'sys/quotas/config', { enable_rate_limit_response_headers: true });
      await vaultData(server.addr, server.rootToken, 'POST', 'sys/quotas/rate-limit/one-per-minute',
        { path: 'auth/token/lookup-self', rate: 1, interval: '60s' });
      const api = nodeVaultApi(server.addr);
      await api.lookupSelf(server.rootToken);
      const failure = describeVaultError(await api.lookupSelf(server.rootToken).catch((e: unknown) => e));
      expect(failure.status).to.equal(429);
      expect(failure.retryAfterMs).to.be.within(1000, 60_000);
    } finally {
      await server.stop();
    }
  });
});
