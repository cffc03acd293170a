import { expect } from 'chai';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AppRoleCredentials, removeCredentialVariables } from '../../src/vault/approle-credentials.js';
import { nodeVaultApi } from '../../src/vault/vault-api.js';
import { startDevServer, type DevServer } from '../support/bao.js';
import { tempDir } from '../support/temp-dirs.js';
import { vaultData, vaultRequest } from '../support/vault-http.js';

const role = 'saas-app-dev';

/** Never contacted: these credentials need no unwrapping. */
const noVault = nodeVaultApi('http://127.0.0.1:1');

async function takeError(env: NodeJS.ProcessEnv): Promise<Error> {
  return AppRoleCredentials.take(env, role).then(() => expect.fail('expected take() to refuse'), (error: unknown) => error as Error);
}

describe('removeCredentialVariables', function () {
  it('deletes every credential variable, set or empty, and nothing else', function () {
    const env: NodeJS.ProcessEnv = {
      VAULT_ROLE_ID: 'r', VAULT_ROLE_ID_FILE: '/run/role-id', VAULT_SECRET_ID: 's', VAULT_SECRET_ID_FILE: '',
      VAULT_WRAPPED_SECRET_ID: 'w', VAULT_WRAPPED_SECRET_ID_FILE: '/run/wrapped', VAULT_ADDR: 'http://vault:8200', HOME: '/home/app',
    };
    removeCredentialVariables(env);
    expect(env).to.deep.equal({ VAULT_ADDR: 'http://vault:8200', HOME: '/home/app' });
  });
});

describe('AppRoleCredentials', function () {
  let dir: string;
  beforeEach(async function () {
    dir = await tempDir('credentials');
  });

  it('refuses a plain secret id in a variable when only wrapped ones are taken (prod), naming the other forms', async function () {
    const env: NodeJS.ProcessEnv = { VAULT_ROLE_ID: 'role-1', VAULT_SECRET_ID: 'secret-1' };
    const error = await AppRoleCredentials.take(env, role, { wrappedOnly: true })
      .then(() => expect.fail('expected take() to refuse'), (e: unknown) => e as Error);
    expect(error.message).to.match(/^VAULT_SECRET_ID is refused with APP_ENV=prod: .*\(VAULT_WRAPPED_SECRET_ID\), or in a file \(VAULT_WRAPPED_SECRET_ID_FILE or VAULT_SECRET_ID_FILE\)$/);
    expect(error.message).to.not.contain('secret-1');
    expect(env, 'removed all the same').to.deep.equal({});
    const file = join(dir, 'secret-id');
    await writeFile(file, 'secret-2');
    const fromFile = await AppRoleCredentials.take({ VAULT_ROLE_ID: 'role-1', VAULT_SECRET_ID_FILE: file }, role, { wrappedOnly: true });
    expect(await fromFile.secretId(noVault), 'a file is taken').to.equal('secret-2');
  });

  it('takes the role id and secret id from the environment and removes every credential variable', async function () {
    const env: NodeJS.ProcessEnv = { VAULT_ROLE_ID: 'role-1', VAULT_SECRET_ID: 'secret-1', HOME: '/home/app' };
    const credentials = await AppRoleCredentials.take(env, role);
    expect(credentials.roleId).to.equal('role-1');
    expect(await credentials.secretId(noVault)).to.equal('secret-1');
    expect(env).to.deep.equal({ HOME: '/home/app' });
  });

  it('reads the *_FILE variants, trimming the newline files usually end with', async function () {
    await writeFile(join(dir, 'role-id'), 'role-2\n');
    await writeFile(join(dir, 'secret-id'), 'secret-2\n');
    const env = { VAULT_ROLE_ID_FILE: join(dir, 'role-id'), VAULT_SECRET_ID_FILE: join(dir, 'secret-id') };
    const credentials = await AppRoleCredentials.take(env, role);
    expect(credentials.roleId).to.equal('role-2');
    expect(await credentials.secretId(noVault)).to.equal('secret-2');
    expect(env).to.deep.equal({});
  });

  it('re-reads the secret id file at each login, and keeps the last one once the file is gone', async function () {
    const file = join(dir, 'secret-id');
    await writeFile(file, 'first');
    const credentials = await AppRoleCredentials.take({ VAULT_ROLE_ID: 'r', VAULT_SECRET_ID_FILE: file }, role);
    expect(await credentials.secretId(noVault)).to.equal('first');
    await writeFile(file, 'fresh from the orchestrator');
    expect(await credentials.secretId(noVault)).to.equal('fresh from the orchestrator');
    await rm(file);
    expect(await credentials.secretId(noVault)).to.equal('fresh from the orchestrator');
  });

  it('names the variables when the role id or the secret id is missing', async function () {
    expect((await takeError({ VAULT_SECRET_ID: 's' })).message).to.equal('no role id: set VAULT_ROLE_ID or VAULT_ROLE_ID_FILE');
    expect((await takeError({ VAULT_ROLE_ID: 'r' })).message).to.equal(
      'no secret id: set VAULT_SECRET_ID or VAULT_SECRET_ID_FILE or VAULT_WRAPPED_SECRET_ID or VAULT_WRAPPED_SECRET_ID_FILE');
  });

  it('refuses two ways of giving the same credential, and still removes them all', async function () {
    const env = { VAULT_ROLE_ID: 'r', VAULT_SECRET_ID: 's', VAULT_WRAPPED_SECRET_ID: 'w' };
    expect((await takeError(env)).message).to.equal(
      'VAULT_SECRET_ID and VAULT_WRAPPED_SECRET_ID are all set: give the secret id one way only');
    expect(env).to.deep.equal({});
  });

  it('names the variable and the file when a file is missing or empty, without its content', async function () {
    const missing = join(dir, 'nope');
    expect((await takeError({ VAULT_ROLE_ID_FILE: missing, VAULT_SECRET_ID: 's' })).message).to.equal(
      `VAULT_ROLE_ID_FILE names ${missing}, which cannot be read (ENOENT)`);
    await writeFile(join(dir, 'empty'), '\n');
    expect((await takeError({ VAULT_ROLE_ID: 'r', VAULT_SECRET_ID_FILE: join(dir, 'empty') })).message).to.equal(
      `VAULT_SECRET_ID_FILE names ${join(dir, 'empty')}, which is empty`);
  });
});

describe('AppRoleCredentials with a response-wrapped secret id, against a real bao dev server', function () {
  let server: DevServer;
  before(async function () {
    server = await startDevServer();
    await vaultData(server.addr, server.rootToken, 'POST', 'sys/auth/approle', { type: 'approle' });
    await vaultData(server.addr, server.rootToken, 'POST', 'auth/approle/role/saas-app-dev', { token_ttl: '5m' });
  });
  after(async function () {
    await server.stop();
  });

  async function wrappedSecretId(): Promise<string> {
    const response = await fetch(`${server.addr}/v1/auth/approle/role/saas-app-dev/secret-id`, {
      method: 'POST', headers: { 'X-Vault-Token': server.rootToken, 'X-Vault-Wrap-TTL': '60s' },
    });
    return ((await response.json()) as { wrap_info: { token: string } }).wrap_info.token;
  }

  it('unwraps the secret id once and logs in with it', async function () {
    const api = nodeVaultApi(server.addr);
    const credentials = await AppRoleCredentials.take({ VAULT_ROLE_ID: 'unused', VAULT_WRAPPED_SECRET_ID: await wrappedSecretId() }, role);
    const secretId = await credentials.secretId(api);
    expect(secretId).to.match(/^[0-9a-f-]{36}$/);
    expect(await credentials.secretId(api), 'the second login reuses the unwrapped secret id').to.equal(secretId);
    const roleId = await vaultData<{ role_id: string }>(server.addr, server.rootToken, 'GET',
      'auth/approle/role/saas-app-dev/role-id');
    expect((await api.loginAppRole(roleId.role_id, secretId)).policies).to.include('default');
  });

  it('unwraps a new wrapping token dropped in the file, and keeps the secret id when the file is gone', async function () {
    const api = nodeVaultApi(server.addr);
    const file = join(await tempDir('wrapped'), 'wrapped-secret-id');
    await writeFile(file, await wrappedSecretId());
    const credentials = await AppRoleCredentials.take({ VAULT_ROLE_ID: 'r', VAULT_WRAPPED_SECRET_ID_FILE: file }, role);
    const first = await credentials.secretId(api);
    expect(await credentials.secretId(api)).to.equal(first);
    await writeFile(file, await wrappedSecretId());
    const second = await credentials.secretId(api);
    expect(second).to.not.equal(first);
    await rm(file);
    expect(await credentials.secretId(api)).to.equal(second);
  });

  it('reports a wrapping token that was already used as possible interception', async function () {
    const token = await wrappedSecretId();
    const thief = await vaultRequest(server.addr, token, 'POST', 'sys/wrapping/unwrap');
    expect(thief.status).to.equal(200);
    const credentials = await AppRoleCredentials.take({ VAULT_ROLE_ID: 'r', VAULT_WRAPPED_SECRET_ID: token }, role);
    const error = await credentials.secretId(nodeVaultApi(server.addr)).catch((e: unknown) => e as Error);
    expect((error as Error).message).to.equal(
      'the wrapping token in VAULT_WRAPPED_SECRET_ID is invalid, expired or was already used. Expired: it waited ' +
      'longer than its wrap TTL; deliver a fresh one just before the start. Already used: possible interception; ' +
      'someone else may have unwrapped the secret id first; destroy the role\'s secret ids and find out who before ' +
      'issuing a new one');
    expect((error as Error).message).to.not.contain(token);
  });

  it('reports a wrapping token that does not wrap a secret id of the role as possible interception', async function () {
    const wrapped = await fetch(`${server.addr}/v1/sys/wrapping/wrap`, {
      method: 'POST',
      headers: { 'X-Vault-Token': server.rootToken, 'X-Vault-Wrap-TTL': '60s', 'Content-Type': 'application/json' },
      body: JSON.stringify({ secret_id: 'attacker-chosen' }),
    });
    const token = ((await wrapped.json()) as { wrap_info: { token: string } }).wrap_info.token;
    const credentials = await AppRoleCredentials.take({ VAULT_ROLE_ID: 'r', VAULT_WRAPPED_SECRET_ID: token }, role);
    const error = await credentials.secretId(nodeVaultApi(server.addr)).catch((e: unknown) => e as Error);
    expect((error as Error).message).to.match(
      /^the wrapping token in VAULT_WRAPPED_SECRET_ID was created at sys\/wrapping\/wrap, not at auth\/approle\/role\/saas-app-dev\/secret-id: possible interception/);
  });
});
