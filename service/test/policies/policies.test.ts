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

/** The role statements scripts/database-engine.sh writes, as it writes them (its JSON block). */
async function shippedStatements(): Promise<{ creation_statements: string[]; revocation_statements: string[] }> {
  const script = await readFile(join(repoRoot, 'scripts/database-engine.sh'), 'utf8');
  const block = /cat <<'JSON'\n([\s\S]*?)\nJSON\n/.exec(script)?.[1];
  if (block === undefined) throw new Error('scripts/database-engine.sh has no JSON block of statements');
  return JSON.parse(`{${block}}`) as { creation_statements: string[]; revocation_statements: string[] };
}

describe(`policies/saas-admin.hcl on the database engine, as a real ${vaultServer.name} server reads it`, function () {
  let server: DevServer;
  let admin: string;

  before(async function () {
    server = await startDevServer();
    await vaultData(server.addr, server.rootToken, 'POST', 'sys/mounts/database', { type: 'database' });
    const policy = await readFile(join(repoRoot, 'policies/saas-admin.hcl'), 'utf8');
    await vaultData(server.addr, server.rootToken, 'PUT', 'sys/policies/acl/saas-admin', { policy });
    admin = await vaultRequestToken(server, 'saas-admin');
  });
  after(async function () {
    await server.stop();
  });

  const writeRole = async (env: string, body: Record<string, unknown>) =>
    (await vaultRequest(server.addr, admin, 'POST', `database/roles/saas-app-${env}`, body)).status;

  for (const env of environments) {
    it(`lets the admin write saas-app-${env} with database-engine.sh's statements and change its TTLs, nothing else`, async function () {
      const shipped = await shippedStatements();
      const role = { db_name: `saas-${env}`, default_ttl: '1h', max_ttl: '24h', ...shipped };
      expect(await writeRole(env, role), 'the shipped statements').to.be.within(200, 204);
      expect(await writeRole(env, { default_ttl: '2h' }), 'a TTL alone').to.be.within(200, 204);
      const escalating = shipped.creation_statements.map((statement) => statement.replace('IN ROLE saas_app_owner', 'IN ROLE pg_execute_server_program'));
      const refused: [string, Record<string, unknown>][] = [
        ['another creation statement', { ...role, creation_statements: escalating }],
        ['one statement more', { ...role, creation_statements: [...shipped.creation_statements, 'GRANT pg_read_server_files TO "{{name}}"'] }],
        ['the statements as one string', { ...role, creation_statements: shipped.creation_statements.join(';') }],
        ['another revocation statement', { ...role, revocation_statements: ['ALTER ROLE vault_admin SUPERUSER'] }],
        ['renew statements', { renew_statements: ['ALTER ROLE vault_admin SUPERUSER'] }],
        ['rollback statements', { rollback_statements: ['ALTER ROLE vault_admin SUPERUSER'] }],
        ['another connection', { db_name: 'saas-other' }],
      ];
      for (const [what, body] of refused) expect(await writeRole(env, body), what).to.equal(403);
      const stored = await vaultData<{ creation_statements: string[] }>(server.addr, server.rootToken, 'GET', `database/roles/saas-app-${env}`);
      expect(stored.creation_statements).to.deep.equal(shipped.creation_statements);
    });
  }

  it('refuses the admin root_rotation_statements, another plugin or other allowed roles on a connection', async function () {
    for (const [what, body] of [
      ['root rotation statements', { root_rotation_statements: ['ALTER ROLE "{{username}}" SUPERUSER'] }],
      ['another plugin', { plugin_name: 'mysql-database-plugin' }],
      ['every role', { allowed_roles: '*' }],
    ] as const) {
      expect((await vaultRequest(server.addr, admin, 'POST', 'database/config/saas-prod', body)).status, what).to.equal(403);
    }
  });
});
