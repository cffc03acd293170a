import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot, startDevServer, type DevServer, vaultServer } from '../support/bao.js';
import { vaultData, vaultRequest } from '../support/vault-http.js';

const environments = ['dev', 'staging', 'prod'] as const;

describe(`policies/saas-app-<env>.hcl, as a real ${vaultServer.name} server reads them`, function () {
  let server: DevServer;
  const tokens = new Map<string, string>();

  before(async function () {
    server = await startDevServer();
    for (const env of environments) {
      const policy = await readFile(join(repoRoot, `policies/saas-app-${env}.hcl`), 'utf8');
      await vaultData(server.addr, server.rootToken, 'PUT', `sys/policies/acl/saas-app-${env}`, { policy });
      const created = await vaultRequestToken(server, `saas-app-${env}`);
      tokens.set(env, created);
    }
  });
  after(async function () {
    await server.stop();
  });

  async function capabilities(env: string, path: string): Promise<string[]> {
    const result = await vaultData<Record<string, string[]>>(server.addr, server.rootToken, 'POST',
      'sys/capabilities', { token: tokens.get(env), paths: [path] });
    return result[path] ?? [];
  }

  for (const env of environments) {
    describe(`saas-app-${env}`, function () {
      it(`grants exactly read on secret/data/saas-project/${env}/*`, async function () {
        for (const group of ['database', 'api-keys', 'app', 'anything-new']) {
          expect(await capabilities(env, `secret/data/saas-project/${env}/${group}`)).to.deep.equal(['read']);
        }
      });

      it('grants nothing on metadata, deletion, other environments, the mount root or sys/', async function () {
        const others = environments.filter((e) => e !== env);
        const paths = [
          `secret/metadata/saas-project/${env}/database`,
          `secret/delete/saas-project/${env}/database`,
          `secret/destroy/saas-project/${env}/database`,
          `secret/undelete/saas-project/${env}/database`,
          `secret/data/saas-project/${env}`,
          'secret/data/saas-project/shared',
          ...others.map((other) => `secret/data/saas-project/${other}/database`),
          'sys/mounts',
          'sys/policies/acl/saas-app-dev',
          'auth/approle/role/saas-app-dev/secret-id',
        ];
        for (const path of paths) expect(await capabilities(env, path), path).to.deep.equal(['deny']);
      });

      it(`grants exactly read on database/creds/saas-app-${env}, and update on sys/leases/renew`, async function () {
        expect(await capabilities(env, `database/creds/saas-app-${env}`)).to.deep.equal(['read']);
        // The token carries no default policy: renewal comes from this policy alone.
        expect(await capabilities(env, 'sys/leases/renew')).to.deep.equal(['update']);
      });

      it('grants nothing on other environments\' credentials, the engine\'s configuration or revocation', async function () {
        const others = environments.filter((e) => e !== env);
        const paths = [
          ...others.map((other) => `database/creds/saas-app-${other}`),
          `database/creds/saas-app-${env}/extra`,
          `database/config/saas-${env}`,
          `database/roles/saas-app-${env}`,
          `database/rotate-root/saas-${env}`,
          `sys/leases/revoke-prefix/database/creds/saas-app-${env}`,
          'sys/leases/revoke',
          'sys/leases/lookup',
        ];
        for (const path of paths) expect(await capabilities(env, path), path).to.deep.equal(['deny']);
      });
    });
  }

  it('leaves renewal and lookup of leases to the built-in default policy as well (OpenBao grants both there)', async function () {
    const policy = await vaultData<{ policy: string }>(server.addr, server.rootToken, 'GET', 'sys/policies/acl/default');
    for (const path of ['sys/leases/renew', 'sys/leases/lookup']) {
      expect(policy.policy, path).to.match(new RegExp(`path "${path}" \\{\\s*capabilities = \\["update"\\]`));
    }
  });
});

/** A token carrying only `policy` (not even `default`), so the policy is all that speaks. */
async function vaultRequestToken(server: DevServer, policy: string): Promise<string> {
  const response = await vaultRequest(server.addr, server.rootToken, 'POST', 'auth/token/create',
    { policies: [policy], no_default_policy: true, ttl: '10m' });
  expect(response.status).to.equal(200);
  return (response.body as { auth: { client_token: string } }).auth.client_token;
}
