import { expect } from 'chai';
import { secretCatalogue, secretGroups } from '../../src/config/secret-catalogue.generated.js';
import type { SecretCatalogue, SecretKeySpec } from '../../src/config/secret-catalogue.js';
import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { startDevServer, type DevServer, vaultServer } from '../support/bao.js';
import { runBootstrap } from '../support/bootstrap.js';
import { tempDir } from '../support/temp-dirs.js';
import { untilSecretIdExpired, unwrapSecretId, vaultData, vaultRequest } from '../support/vault-http.js';

const groups = secretGroups;

interface SecretRead {
  data: Record<string, unknown>;
  metadata: { version: number; created_time: string };
}

/** The role id, and the secret id unwrapped from the file, as the agent does. */
async function readCredentials(server: DevServer, dir: string): Promise<{ roleId: string; secretId: string }> {
  return {
    roleId: await readFile(join(dir, 'role-id'), 'utf8'),
    secretId: await unwrapSecretId(server.addr, await readFile(join(dir, 'secret-id'), 'utf8')),
  };
}

function login(server: DevServer, roleId: string, secretId: string) {
  return vaultRequest(server.addr, undefined, 'POST', 'auth/approle/login', { role_id: roleId, secret_id: secretId });
}

async function loginToken(server: DevServer, credentialsDir: string): Promise<string> {
  const { roleId, secretId } = await readCredentials(server, credentialsDir);
  const response = await login(server, roleId, secretId);
  expect(response.status, JSON.stringify(response.body)).to.equal(200);
  return (response.body as { auth: { client_token: string } }).auth.client_token;
}

/** Everything the bootstrap configures, read back with the root token. */
async function vaultState(server: DevServer) {
  const root = server.rootToken;
  const mounts = await vaultData<Record<string, { type: string; options: unknown; uuid: string }>>(
    server.addr, root, 'GET', 'sys/mounts');
  const auths = await vaultData<Record<string, { type: string; uuid: string }>>(server.addr, root, 'GET', 'sys/auth');
  const secrets: Record<string, unknown> = {};
  for (const group of groups) {
    secrets[group] = await vaultData(server.addr, root, 'GET', `secret/metadata/saas-project/dev/${group}`);
  }
  return {
    kv: mounts['secret/'],
    approle: auths['approle/'],
    policy: await vaultData(server.addr, root, 'GET', 'sys/policies/acl/saas-app-dev'),
    role: await vaultData(server.addr, root, 'GET', 'auth/approle/role/saas-app-dev'),
    roleId: await vaultData(server.addr, root, 'GET', 'auth/approle/role/saas-app-dev/role-id'),
    secrets,
  };
}

describe(`scripts/bootstrap.sh against a real ${vaultServer.name} dev server`, function () {
  // bootstrap.sh makes dozens of CLI calls; HashiCorp Vault's 365 MB binary starts each more slowly, three files at a time.
  this.timeout(90_000);
  let server: DevServer;
  let credentials: string;
  let firstRun: Awaited<ReturnType<typeof runBootstrap>>;

  before(async function () {
    server = await startDevServer();
    credentials = join(await tempDir('credentials'), 'approle');
    firstRun = await runBootstrap(server, 'dev', credentials);
    expect(firstRun.code, firstRun.stderr).to.equal(0);
  });
  after(async function () {
    await server.stop();
  });

  it('prints one line per step, each saying what it did', function () {
    expect(firstRun.stdout.trimEnd().split('\n')).to.deep.equal([
      'bootstrap: KV v2 already enabled at secret/',
      'bootstrap: enabled AppRole at auth/approle',
      'bootstrap: created policy saas-app-dev',
      'bootstrap: wrote role saas-app-dev (policy saas-app-dev, token_ttl 5m, token_max_ttl 1h, secret_id_ttl 24h, secret_id_num_uses 30)',
      ...groups.map((group) => `bootstrap: wrote generated example secrets to secret/data/saas-project/dev/${group}`),
      `bootstrap: wrote the role id to ${credentials}/role-id`,
      `bootstrap: wrote a new response-wrapped secret id (wrap TTL 10m) to ${credentials}/secret-id`,
    ]);
  });

  it('binds the role to the environment policy only, with bounded tokens and secret ids', async function () {
    const role = await vaultData<Record<string, unknown>>(server.addr, server.rootToken, 'GET',
      'auth/approle/role/saas-app-dev');
    expect(role).to.include({
      token_ttl: 300,
      token_max_ttl: 3600,
      token_num_uses: 0,
      secret_id_ttl: 86400,
      secret_id_num_uses: 30,
      bind_secret_id: true,
    });
    expect(role.token_policies).to.deep.equal(['saas-app-dev']);
  });

  it('generates example secrets for each group, distinct and never seen before', async function () {
    const values: string[] = [];
    for (const group of groups) {
      const secret = await vaultData<SecretRead>(server.addr, server.rootToken, 'GET',
        `secret/data/saas-project/dev/${group}`);
      expect(secret.metadata.version).to.equal(1);
      values.push(...Object.values(secret.data).flat().map(String));
    }
    // One value per key of the catalogue; its fixed examples as written, every other one random hex.
    const keys: SecretKeySpec[] = Object.values(secretCatalogue.groups as SecretCatalogue['groups']).flatMap((group) => Object.values(group.keys));
    expect(values).to.have.length(keys.length);
    const fixed = new Set(keys.flatMap(({ example }) => ('fixed' in example ? [example.fixed] : [])));
    for (const value of values.filter((v) => !fixed.has(v))) expect(value).to.match(/^[0-9a-f]{48,64}$/);
    expect(new Set(values).size).to.equal(values.length);
  });

  it('writes the role id and the secret id readable by their owner only (0400)', async function () {
    for (const name of ['role-id', 'secret-id']) {
      const info = await stat(join(credentials, name));
      expect((info.mode & 0o777).toString(8), name).to.equal('400');
    }
    const roleId = await readFile(join(credentials, 'role-id'), 'utf8');
    const expected = await vaultData<{ role_id: string }>(server.addr, server.rootToken, 'GET',
      'auth/approle/role/saas-app-dev/role-id');
    expect(roleId).to.equal(expected.role_id);
  });

  it('changes nothing on a second run, and says so', async function () {
    const before = await vaultState(server);
    const secretIdBefore = await readFile(join(credentials, 'secret-id'), 'utf8');
    const second = await runBootstrap(server, 'dev', credentials);
    expect(second.code, second.stderr).to.equal(0);
    expect(await vaultState(server)).to.deep.equal(before);
    expect(await readFile(join(credentials, 'secret-id'), 'utf8')).to.equal(secretIdBefore);
    const lines = second.stdout.trimEnd().split('\n');
    expect(lines, 'six steps, and one line per group').to.have.length(6 + groups.length);
    for (const line of lines) expect(line).to.match(/already|unchanged|left as it is|left in place/);
  });

  it('writes the secret id response-wrapped: created by the role\'s secret-id endpoint, unwrappable once', async function () {
    const wrapped = (await readFile(join(credentials, 'secret-id'), 'utf8')).trim();
    const lookup = await vaultData<{ creation_path: string; creation_ttl: number }>(server.addr, server.rootToken, 'POST',
      'sys/wrapping/lookup', { token: wrapped });
    expect(lookup).to.include({ creation_path: 'auth/approle/role/saas-app-dev/secret-id', creation_ttl: 600 });
    expect(await unwrapSecretId(server.addr, wrapped)).to.match(/^[0-9a-f-]{36}$/);
    const again = await vaultRequest(server.addr, wrapped, 'POST', 'sys/wrapping/unwrap');
    expect(again.status).to.equal(400);
  });

  it('writes a fresh secret id once the agent has consumed the file', async function () {
    const old = await readFile(join(credentials, 'secret-id'), 'utf8');
    await rm(join(credentials, 'secret-id'));
    const run = await runBootstrap(server, 'dev', credentials);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.contain(`wrote a new response-wrapped secret id (wrap TTL 10m) to ${credentials}/secret-id`);
    expect(await readFile(join(credentials, 'secret-id'), 'utf8')).to.not.equal(old);
  });

  it('logs in with the written credentials: policies default and saas-app-dev exactly, TTL as configured',
    async function () {
      const token = await loginToken(server, credentials);
      const self = await vaultData<{ policies: string[]; ttl: number; creation_ttl: number; num_uses: number }>(
        server.addr, token, 'GET', 'auth/token/lookup-self');
      expect([...self.policies].sort()).to.deep.equal(['default', 'saas-app-dev']);
      expect(self.creation_ttl).to.equal(300);
      expect(self.ttl).to.be.within(290, 300);
      expect(self.num_uses).to.equal(0);
    });

  describe('with the app token', function () {
    let token: string;
    before(async function () {
      // The earlier login unwrapped the secret id: mint a fresh one, as for a restarted agent.
      await rm(join(credentials, 'secret-id'));
      expect((await runBootstrap(server, 'dev', credentials)).code).to.equal(0);
      token = await loginToken(server, credentials);
      // Another environment's secret must exist, so that its 403 is the policy speaking.
      await vaultData(server.addr, server.rootToken, 'POST', 'secret/data/saas-project/prod/database',
        { data: { password: 'prod-only' } });
    });

    for (const group of groups) {
      it(`reads secret/data/saas-project/dev/${group}`, async function () {
        const response = await vaultRequest(server.addr, token, 'GET', `secret/data/saas-project/dev/${group}`);
        expect(response.status).to.equal(200);
        expect(Object.keys((response.body as { data: SecretRead }).data.data)).to.not.be.empty;
      });
    }

    const forbidden: [string, string, string, unknown?, string?][] = [
      ['writes a secret', 'POST', 'secret/data/saas-project/dev/database', { data: { password: 'x' } }],
      ['patches a secret', 'PATCH', 'secret/data/saas-project/dev/database', { data: { password: 'x' } },
        'application/merge-patch+json'],
      ['deletes a secret', 'DELETE', 'secret/data/saas-project/dev/database'],
      ['destroys versions', 'POST', 'secret/destroy/saas-project/dev/database', { versions: [1] }],
      ['deletes metadata', 'DELETE', 'secret/metadata/saas-project/dev/database'],
      ['lists metadata', 'LIST', 'secret/metadata/saas-project/dev'],
      ['reads metadata', 'GET', 'secret/metadata/saas-project/dev/database'],
      ['reads another environment', 'GET', 'secret/data/saas-project/prod/database'],
      ['writes a new path in its own environment', 'POST', 'secret/data/saas-project/dev/new', { data: { a: 'b' } }],
      ['reads sys/mounts', 'GET', 'sys/mounts'],
      ['reads sys/policies', 'GET', 'sys/policies/acl/saas-app-dev'],
      ['creates a token', 'POST', 'auth/token/create', {}],
      ['creates a secret id', 'POST', 'auth/approle/role/saas-app-dev/secret-id', {}],
    ];
    for (const [what, method, path, body, contentType] of forbidden) {
      it(`is denied (403) when it ${what}: ${method} ${path}`, async function () {
        const response = await vaultRequest(server.addr, token, method, path, body, contentType);
        expect(response.status, JSON.stringify(response.body)).to.equal(403);
      });
    }
  });
});

describe(`scripts/bootstrap.sh secret id limits, against a real ${vaultServer.name} dev server`, function () {
  // bootstrap.sh makes dozens of CLI calls; HashiCorp Vault's 365 MB binary starts each more slowly, three files at a time.
  this.timeout(90_000);
  let server: DevServer;
  beforeEach(async function () {
    server = await startDevServer();
  });
  afterEach(async function () {
    await server.stop();
  });

  it('a secret id with one use cannot log in twice', async function () {
    const credentials = await tempDir('credentials');
    const run = await runBootstrap(server, 'staging', credentials, { ROLE_SECRET_ID_NUM_USES: '1' });
    expect(run.code, run.stderr).to.equal(0);
    const { roleId, secretId } = await readCredentials(server, credentials);
    expect((await login(server, roleId, secretId)).status).to.equal(200);
    const second = await login(server, roleId, secretId);
    expect(second.status).to.equal(400);
    expect(JSON.stringify(second.body)).to.match(/invalid role or secret id/i);
  });

  it(`an expired secret id cannot log in (${vaultServer.name}: ${vaultServer.expiredSecretIdGraceMs === 0 ? 'from its expiry on' : 'once its tidy has run, within two minutes of its expiry'})`, async function () {
    this.timeout(20_000 + vaultServer.expiredSecretIdGraceMs);
    const credentials = await tempDir('credentials');
    const run = await runBootstrap(server, 'prod', credentials, { ROLE_SECRET_ID_TTL: '2s' });
    expect(run.code, run.stderr).to.equal(0);
    const { roleId, secretId } = await readCredentials(server, credentials);
    await untilSecretIdExpired(server, 'saas-app-prod', secretId);
    const response = await login(server, roleId, secretId);
    expect(response.status).to.equal(400);
    expect(JSON.stringify(response.body)).to.match(/invalid role or secret id/i);
  });

  it('applies overridden role TTLs to the tokens it issues', async function () {
    const credentials = await tempDir('credentials');
    const run = await runBootstrap(server, 'dev', credentials, { ROLE_TOKEN_TTL: '7m', ROLE_TOKEN_MAX_TTL: '2h' });
    expect(run.code, run.stderr).to.equal(0);
    const token = await loginToken(server, credentials);
    const self = await vaultData<{ creation_ttl: number; explicit_max_ttl: number }>(
      server.addr, token, 'GET', 'auth/token/lookup-self');
    expect(self.creation_ttl).to.equal(420);
    const role = await vaultData<{ token_max_ttl: number }>(server.addr, server.rootToken, 'GET',
      'auth/approle/role/saas-app-dev');
    expect(role.token_max_ttl).to.equal(7200);
  });
});

describe(`scripts/bootstrap.sh on bad input, against a real ${vaultServer.name} dev server`, function () {
  // bootstrap.sh makes dozens of CLI calls; HashiCorp Vault's 365 MB binary starts each more slowly, three files at a time.
  this.timeout(90_000);
  let server: DevServer;
  before(async function () {
    server = await startDevServer();
  });
  after(async function () {
    await server.stop();
  });

  async function expectFailure(
    target: Pick<DevServer, 'addr' | 'rootToken' | 'dir'>,
    appEnv: string,
    message: RegExp,
    extraEnv: NodeJS.ProcessEnv = {},
  ) {
    const credentials = join(await tempDir('credentials'), 'out');
    const run = await runBootstrap(target, appEnv, credentials, extraEnv);
    expect(run.code).to.equal(1);
    expect(run.stderr).to.match(message);
    expect(run.stdout).to.equal('');
    // Nothing half-applied: no credentials were written.
    const exists = await stat(credentials).then(() => true, () => false);
    expect(exists, `${credentials} should not exist`).to.be.false;
  }

  it('names an unknown environment', async function () {
    await expectFailure(server, 'qa', /unknown environment 'qa': expected dev, staging or prod/);
  });

  it('names the address when no server answers', async function () {
    const nowhere = { ...server, addr: 'http://127.0.0.1:1' };
    await expectFailure(nowhere, 'dev', /cannot reach Vault at http:\/\/127\.0\.0\.1:1 \(VAULT_ADDR\)/);
  });

  it('says the token is refused, without printing it', async function () {
    const wrong = { ...server, rootToken: 'not-a-real-token' };
    await expectFailure(wrong, 'dev', /does not accept VAULT_TOKEN: permission denied/);
    const run = await runBootstrap(wrong, 'dev', await tempDir('credentials'));
    expect(run.stderr).to.not.contain('not-a-real-token');
  });

  it('names a missing VAULT_TOKEN (and no token file of the CLI\'s in HOME)', async function () {
    // The dev server's HOME holds its root token in .vault-token, which the scripts take too.
    await expectFailure(server, 'dev', /VAULT_TOKEN is not set, nor \S+\/\.vault-token/, { VAULT_TOKEN: '', HOME: await tempDir('empty-home') });
  });

  it('names a malformed override', async function () {
    await expectFailure(server, 'dev', /ROLE_TOKEN_TTL must be a duration .* \(got '5 minutes'\)/,
      { ROLE_TOKEN_TTL: '5 minutes' });
  });

  it('changed nothing in Vault on any of those failures', async function () {
    const auths = await vaultData<Record<string, unknown>>(server.addr, server.rootToken, 'GET', 'sys/auth');
    expect(auths).to.not.have.property('approle/');
  });
});
