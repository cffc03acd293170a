import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readSettings } from '../../src/config/settings.js';
import { startService, type RunningService } from '../../src/start.js';
import { waitForFile } from '../support/agent.js';
import { serverBin, baoEnv, repoRoot, vaultServer } from '../support/bao.js';
import { generateTls, httpsGet, runScript, startServerNode, type ServerNode, type Tls } from '../support/bao-server.js';
import { registerSecret } from '../support/leak-scan.js';
import { startTestPostgres } from '../support/postgres.js';
import { spawnManaged, type ManagedProcess } from '../support/processes.js';
import { poll, statusOf, timeUntil } from '../support/http-poll.js';
import { addIdentityProviderAfterBootstrap } from '../support/production-identity.js';
import { capturingLogger } from '../support/rendered-secrets.js';
import { shippedProduction } from '../support/shipped-durations.js';
import { tlsRedirectUrl } from '../support/sign-in.js';
import { tempDir } from '../support/temp-dirs.js';

/**
 * Issue 16, items 1 and 5: production after the root token is gone. One real non-dev bao
 * (Raft, TLS) taken through operator-init.sh, unseal.sh and first-bootstrap.sh; then the admin
 * (policy saas-admin, userpass) runs the runbook with the CLI and the scripts of scripts/prod/,
 * logged in the way an operator is: the token in the CLI's token helper (~/.vault-token), no
 * VAULT_TOKEN.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/**
 * The orchestrator's renewal timer in the test, and its token's period. A renewal starts every
 * RENEW_EVERY_MS, or as soon as the previous one has finished when that took longer; the period
 * leaves 6.5 s for one run of the script (two CLI calls over TLS) on a busy machine.
 */
const RENEW_EVERY_MS = 1500;
const ORCHESTRATOR_PERIOD_S = 8;

interface Outcome { code: number; stdout: string; stderr: string }

/** The `bao` CLI with the environment `env`, stdin given (passwords and keys never in argv). */
function cli(env: NodeJS.ProcessEnv, args: string[], stdin = ''): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = execFile(serverBin, args, { env, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(stdin);
  });
}

/** An agent from agent-config/, talking TLS to `node` (as production.test.ts starts one). */
async function startProdAgent(node: ServerNode, tls: Tls, credentialsDir: string, extraEnv: NodeJS.ProcessEnv = {}) {
  const dir = await tempDir('agent');
  await symlink(join(repoRoot, 'agent-config'), join(dir, 'config'));
  await symlink(credentialsDir, join(dir, 'credentials'));
  await mkdir(join(dir, 'secrets'), { mode: 0o750 });
  const proc: ManagedProcess = spawnManaged(serverBin, ['agent', '-config=config/agent.hcl', '-config=config/env/prod.hcl'], {
    cwd: dir, env: baoEnv(dir, { VAULT_ADDR: node.addr, VAULT_CACERT: tls.ca, APP_ENV: 'prod', ...extraEnv }), logFile: join(dir, 'agent.log'),
  });
  const rendered = join(dir, 'secrets/app.json');
  await waitForFile(rendered, proc, 30_000);
  return { dir, proc, rendered, token: join(dir, 'secrets/token') };
}

describe(`admin access after the root token is revoked, token hygiene and the kill switch (real non-dev ${vaultServer.name}: Raft, TLS; agent and service)`, function () {
  this.timeout(90_000);
  let tls: Tls;
  let node: ServerNode;
  let unsealKeys: string[];
  let credentials: string;
  let orchestratorTokenFile: string;
  /** The admin's HOME: `bao login` keeps the token there, as on an operator's machine. */
  let adminHome: string;
  let adminPassword: string;
  let agent: Awaited<ReturnType<typeof startProdAgent>> | undefined;
  let service: RunningService | undefined;
  let log: ReturnType<typeof capturingLogger>;

  const asAdmin = (args: string[], stdin = '') => cli(node.cliEnv({ HOME: adminHome }), args, stdin);
  const adminScript = (script: string, args: string[], stdin = '') =>
    runScript(`scripts/prod/${script}`, args, node.cliEnv({ HOME: adminHome }), stdin);
  /** A fresh orchestrator token of `env`, as an admin hands one out: the token role saas-orchestrator-<env> only. */
  const newOrchestratorToken = async (env = 'prod') => {
    const created = await asAdmin(['token', 'create', `-role=saas-orchestrator-${env}`, '-field=token']);
    expect(created.code, created.stderr).to.equal(0);
    const token = created.stdout.trim();
    registerSecret('orchestrator token (admin-made)', token);
    return token;
  };
  const issueSecretId = async (file: string) => {
    const issued = await runScript('scripts/prod/issue-wrapped-secret-id.sh', [file],
      node.cliEnv({ VAULT_TOKEN: await newOrchestratorToken(), APP_ENV: 'prod' }));
    expect(issued.code, issued.stderr).to.equal(0);
  };
  const accessors = async () => {
    const listed = await asAdmin(['list', '-format=json', 'auth/approle/role/saas-app-prod/secret-id']);
    return listed.code === 0 ? JSON.parse(listed.stdout) as string[] : [];
  };

  /** Where staging's orchestrator calls from, in this test: a block no test process has. */
  const unreachableOrchestrators = '192.0.2.0/24';
  /** The shipped agent's max_backoff (agent-config/env/prod.hcl): its longest wait between two logins. */
  const maxBackoffMs = async () => (await shippedProduction()).durations.maxBackoff;

  before(async function () {
    tls = await generateTls();
    node = await startServerNode(tls);
    const initFile = join(await tempDir('init'), 'init.json');
    const init = await runScript('scripts/prod/operator-init.sh', [initFile, '3', '2'], node.cliEnv());
    expect(init.code, init.stderr).to.equal(0);
    const output = JSON.parse(await readFile(initFile, 'utf8')) as { unseal_keys_b64: string[]; root_token: string };
    registerSecret('initial root token', output.root_token);
    registerSecret('unseal key', ...output.unseal_keys_b64);
    unsealKeys = output.unseal_keys_b64;
    const unsealed = await runScript('scripts/prod/unseal.sh', [], node.cliEnv(), unsealKeys.join('\n') + '\n');
    expect(unsealed.code, unsealed.stderr).to.equal(0);

    adminHome = await tempDir('admin-home');
    adminPassword = randomBytes(24).toString('hex');
    registerSecret('admin password', adminPassword);
    const passwordFile = join(await tempDir('admin'), 'password');
    await writeFile(passwordFile, `${adminPassword}\n`, { mode: 0o600 });
    credentials = join(await tempDir('credentials'), 'approle');
    orchestratorTokenFile = join(await tempDir('orchestrator'), 'token');
    const run = await runScript('scripts/prod/first-bootstrap.sh', ['prod', credentials, orchestratorTokenFile], node.cliEnv({
      ADMIN_PASSWORD_FILE: passwordFile, ORCHESTRATOR_TOKEN_PERIOD: `${ORCHESTRATOR_PERIOD_S}s`, ROLE_TOKEN_TTL: '6s', ROLE_TOKEN_MAX_TTL: '1h',
      // Staging's orchestrator calls from an address this test never has: its tokens are refused here.
      ORCHESTRATOR_BOUND_CIDRS_STAGING: unreachableOrchestrators,
    }), `${output.root_token}\n`);
    expect(run.code, run.stderr).to.equal(0);
    registerSecret('orchestrator token', await readFile(orchestratorTokenFile, 'utf8'));
    expect(run.stdout).to.contain('wrote the admin user admin (policy saas-admin, token_ttl 1h, token_max_ttl 8h)');
    expect(run.stdout).to.contain('mounted the database secrets engine at database/');
    expect(run.stdout).to.contain('the root token is revoked');
    expect((await httpsGet(`${node.addr}/v1/auth/token/lookup-self`, tls, output.root_token)).status).to.equal(403);
  });
  after(async function () {
    await service?.close();
    await agent?.proc.stop();
    await node.stop();
  });

  it('first-bootstrap.sh refuses to run without ADMIN_PASSWORD_FILE, naming it, before touching the root token', async function () {
    const refused = await runScript('scripts/prod/first-bootstrap.sh', ['prod', join(adminHome, 'c'), join(adminHome, 'o')],
      node.cliEnv(), 'not-a-root-token\n');
    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.contain('ADMIN_PASSWORD_FILE is not set');
  });

  it('the admin logs in with userpass (password on stdin) and gets saas-admin with a short TTL', async function () {
    const wrong = await asAdmin(['login', '-method=userpass', 'username=admin', 'password=-'], 'not-the-password');
    expect(wrong.code).to.not.equal(0);
    const login = await asAdmin(['login', '-method=userpass', 'username=admin', 'password=-'], adminPassword);
    expect(login.code, login.stderr).to.equal(0);
    registerSecret('admin token', await readFile(join(adminHome, '.vault-token'), 'utf8'));
    const self = await asAdmin(['token', 'lookup', '-format=json']);
    expect(self.code, self.stderr).to.equal(0);
    const data = (JSON.parse(self.stdout) as { data: { policies: string[]; ttl: number } }).data;
    expect(data.policies).to.deep.equal(['default', 'saas-admin']);
    expect(data.ttl).to.be.within(3500, 3600);
  });

  it('the admin runs the runbook: kv patch of an API key, kv put of a new database password, the role id, the database engine', async function () {
    const key = randomBytes(32).toString('hex');
    const password = randomBytes(24).toString('hex');
    registerSecret('rotated key', key, password);
    const patched = await asAdmin(['kv', 'patch', '-mount=secret', 'saas-project/prod/api-keys', 'webhook_signing_key=-'], key);
    expect(patched.code, patched.stderr).to.equal(0);
    const put = await asAdmin(['kv', 'put', '-mount=secret', 'saas-project/prod/database', '-'],
      JSON.stringify({ username: 'saas_app', password }));
    expect(put.code, put.stderr).to.equal(0);
    const read = await asAdmin(['kv', 'get', '-mount=secret', '-field=password', 'saas-project/prod/database']);
    expect(read.stdout.trim() === password, 'the new password is stored').to.be.true;
    const infra = await asAdmin(['kv', 'put', '-mount=secret', 'saas-infra/prod/postgres', 'superuser_password=-'], password);
    expect(infra.code, infra.stderr).to.equal(0);
    const roleId = await asAdmin(['read', '-field=role_id', 'auth/approle/role/saas-app-prod/role-id']);
    expect(roleId.stdout.trim()).to.equal((await readFile(join(credentials, 'role-id'), 'utf8')).trim());
    // The database engine first-bootstrap.sh mounted (scripts/database-engine.sh lists the mounts
    // to find it): the admin configures a connection without sys/ write rights.
    const mounts = await asAdmin(['secrets', 'list', '-format=json']);
    expect(mounts.code, mounts.stderr).to.equal(0);
    expect(JSON.parse(mounts.stdout)).to.have.nested.property('database/.type', 'database');
    const config = await asAdmin(['write', 'database/config/saas-prod', 'plugin_name=postgresql-database-plugin',
      'connection_url=postgresql://{{username}}:{{password}}@127.0.0.1:5432/saas', 'username=vault', 'allowed_roles=saas-app-prod',
      'verify_connection=false']);
    expect(config.code, config.stderr).to.equal(0);
    const back = await asAdmin(['read', '-field=allowed_roles', 'database/config/saas-prod']);
    expect(back.stdout).to.contain('saas-app-prod');
    expect((await asAdmin(['delete', 'database/config/saas-prod'])).code).to.equal(0);
    // The policies are readable, to check what a token may do.
    expect((await asAdmin(['policy', 'read', 'saas-app-prod'])).stdout).to.contain('secret/data/saas-project/prod/*');
  });

  it('the admin cannot widen anyone\'s rights: policies, auth methods, mounts, the app role\'s policies', async function () {
    const denied = (outcome: Outcome) => outcome.code !== 0 && /Code: 403|permission denied/.test(outcome.stderr);
    expect(denied(await asAdmin(['policy', 'write', 'saas-app-prod', '-'], 'path "*" { capabilities = ["sudo", "read"] }')),
      'policy write').to.be.true;
    expect(denied(await asAdmin(['auth', 'enable', '-path=userpass2', 'userpass'])), 'auth enable').to.be.true;
    expect(denied(await asAdmin(['secrets', 'enable', '-path=kv2', 'kv'])), 'secrets enable').to.be.true;
    expect(denied(await asAdmin(['write', 'auth/userpass/users/admin', 'token_policies=root'])), 'userpass user write').to.be.true;
    expect(denied(await asAdmin(['token', 'create', '-policy=saas-admin'])), 'token create').to.be.true;
    for (const policies of ['saas-admin', 'saas-app-prod,saas-admin', 'root']) {
      expect(denied(await asAdmin(['write', 'auth/approle/role/saas-app-prod', `token_policies=${policies}`])), policies).to.be.true;
    }
    expect(denied(await asAdmin(['write', 'auth/approle/role/saas-app-prod', 'policies=saas-admin'])), 'policies=').to.be.true;
    expect(denied(await asAdmin(['write', 'auth/approle/role/saas-app-prod', 'bind_secret_id=false'])), 'bind_secret_id').to.be.true;
    // Tuning the role stays the admin's job.
    const tuned = await asAdmin(['write', 'auth/approle/role/saas-app-prod', 'token_policies=saas-app-prod', 'token_ttl=6s']);
    expect(tuned.code, tuned.stderr).to.equal(0);
    const policies = await asAdmin(['read', '-field=token_policies', 'auth/approle/role/saas-app-prod']);
    expect(policies.stdout.trim()).to.equal('[saas-app-prod]');
    // No database credentials for the admin.
    expect(denied(await asAdmin(['read', 'database/creds/saas-app-prod'])), 'database/creds').to.be.true;
  });

  it('renew-orchestrator-token.sh keeps the periodic token alive past several periods; unrenewed, it expires and the script says so', async function () {
    const script = (file: string) => runScript('scripts/prod/renew-orchestrator-token.sh', [file], node.cliEnv());
    // A token of the role first-bootstrap.sh set up, issued now: the one it wrote ran down while the tests above ran.
    const file = join(await tempDir('orchestrator'), 'token');
    await writeFile(file, await newOrchestratorToken(), { mode: 0o400 });
    const token = (await readFile(file, 'utf8')).trim();
    // The timer the runbook asks for, at its interval: each renewal starts RENEW_EVERY_MS after the last one started.
    const start = Date.now();
    let last = start;
    let longestGap = 0;
    while (Date.now() - start < 2 * ORCHESTRATOR_PERIOD_S * 1000) {
      const began = Date.now();
      longestGap = Math.max(longestGap, began - last);
      last = began;
      const renewed = await script(file);
      expect(renewed.code, `${renewed.stderr} (${began - start} ms in; longest gap between renewals ${longestGap} ms)`).to.equal(0);
      const ttl = Number(/valid for (\d+)s more/.exec(renewed.stdout)?.[1]);
      expect(ttl, renewed.stdout).to.be.within(1, ORCHESTRATOR_PERIOD_S);
      await sleep(Math.max(0, began + RENEW_EVERY_MS - Date.now()));
    }
    expect((await httpsGet(`${node.addr}/v1/auth/token/lookup-self`, tls, token)).status, 'alive after 2 periods').to.equal(200);
    await sleep(ORCHESTRATOR_PERIOD_S * 1000 + 1500);
    expect((await httpsGet(`${node.addr}/v1/auth/token/lookup-self`, tls, token)).status, 'expired').to.equal(403);
    const late = await script(file);
    expect(late.code).to.equal(1);
    expect(late.stderr).to.contain('it expired or was revoked; ask an admin for a new one');
    // The admin's answer: a new orchestrator token (orphan, so it outlives the admin's own).
    const fresh = join(await tempDir('orchestrator'), 'token');
    await writeFile(fresh, await newOrchestratorToken(), { mode: 0o400 });
    const lookup = await cli(node.cliEnv({ VAULT_TOKEN: (await readFile(fresh, 'utf8')).trim() }), ['token', 'lookup', '-format=json']);
    const data = (JSON.parse(lookup.stdout) as { data: Record<string, unknown> }).data;
    expect(data).to.deep.include({
      policies: ['default', 'saas-orchestrator-prod'], role: 'saas-orchestrator-prod', creation_ttl: ORCHESTRATOR_PERIOD_S, orphan: true, renewable: true,
    });
    expect((await script(fresh)).code).to.equal(0);
  });

  it('gives each environment its own orchestrator: prod\'s may mint prod secret ids only, staging\'s works only from its addresses', async function () {
    // What each token may do, asked with the token itself (sys/capabilities-self): no secret id
    // is minted, so the accessors the other tests count stay as they are.
    const may = async (token: string, env: string) => {
      const asked = await cli(node.cliEnv({ VAULT_TOKEN: token }), ['token', 'capabilities', `auth/approle/role/saas-app-${env}/secret-id`]);
      return asked.code === 0 ? asked.stdout.trim() : `refused: ${asked.stderr.trim()}`;
    };
    const prod = await newOrchestratorToken('prod');
    expect(await may(prod, 'prod')).to.equal('update');
    expect(await may(prod, 'staging'), 'prod\'s orchestrator on staging').to.equal('deny');
    expect(await may(prod, 'dev'), 'prod\'s orchestrator on dev').to.equal('deny');
    const dev = await newOrchestratorToken('dev');
    expect(await may(dev, 'dev')).to.equal('update');
    expect(await may(dev, 'prod'), 'dev\'s orchestrator on prod').to.equal('deny');
    // Staging's token role is bound to its orchestrator's addresses (ORCHESTRATOR_BOUND_CIDRS_STAGING):
    // the same kind of token as dev's, refused from this address.
    const staging = await newOrchestratorToken('staging');
    expect(await may(staging, 'staging'), 'a staging token used from this address').to.match(/^refused: .*permission denied/s);
  });

  it('generate-root.sh: an admin and a quorum of unseal keys (stdin) make a root token, written only to a 0400 file', async function () {
    const out = join(await tempDir('root'), 'root-token');
    const short = await adminScript('generate-root.sh', [out], `${unsealKeys[0] ?? ''}\n`);
    expect(short.code).to.equal(1);
    expect(short.stderr, short.stderr).to.contain('1 key(s) given, 2 required: more custodians needed');
    const made = await adminScript('generate-root.sh', [out], unsealKeys.slice(0, 2).join('\n') + '\n');
    expect(made.code, made.stderr).to.equal(0);
    expect(((await stat(out)).mode & 0o777).toString(8)).to.equal('400');
    const root = (await readFile(out, 'utf8')).trim();
    registerSecret('generated root token', root);
    expect(made.stdout + made.stderr).to.not.contain(root);
    const rootEnv = node.cliEnv({ VAULT_TOKEN: root });
    const lookup = await cli(rootEnv, ['token', 'lookup', '-format=json']);
    expect((JSON.parse(lookup.stdout) as { data: { policies: string[] } }).data.policies).to.deep.equal(['root']);
    // The runbook's last step: revoke it.
    expect((await cli(rootEnv, ['token', 'revoke', '-self'])).code).to.equal(0);
    expect((await httpsGet(`${node.addr}/v1/auth/token/lookup-self`, tls, root)).status).to.equal(403);
    // Without an admin token, OpenBao refuses to start a root generation at all; for HashiCorp
    // Vault the quorum of unseal keys is enough.
    const anonymousOut = join(await tempDir('root'), 'x');
    const anonymous = await runScript('scripts/prod/generate-root.sh', [anonymousOut], node.cliEnv(), unsealKeys.join('\n') + '\n');
    if (vaultServer.generateRootNeedsToken) {
      expect(anonymous.code).to.equal(1);
      expect(anonymous.stderr).to.contain('Vault refused to start a root token generation');
    } else {
      expect(anonymous.code, anonymous.stderr).to.equal(0);
      const anonymousRoot = (await readFile(anonymousOut, 'utf8')).trim();
      registerSecret('root token generated without a token', anonymousRoot);
      expect((await cli(node.cliEnv({ VAULT_TOKEN: anonymousRoot }), ['token', 'revoke', '-self'])).code).to.equal(0);
    }
  });

  it('the admin sets up production\'s dynamic database credentials (database-engine.sh): the app serves from a user Vault issued', async function () {
    const pg = await startTestPostgres();
    let prodAgent: Awaited<ReturnType<typeof startProdAgent>> | undefined;
    let app: RunningService | undefined;
    try {
      // The DBA's part: scripts/postgres-init.sh with vault_admin's initial password in a file.
      const initial = randomBytes(24).toString('hex');
      registerSecret('vault_admin initial password (prod)', initial);
      await pg.provisionFiles({ 'vault-admin-password': initial });
      const handedOver = join(await tempDir('dba'), 'vault-admin-password');
      await writeFile(handedOver, `${initial}\n`, { mode: 0o600 });
      // The admin's part, logged in (the token from the CLI's token helper), as the plan says.
      const adminToken = (await asAdmin(['print', 'token'])).stdout.trim();
      const engine = await runScript('scripts/database-engine.sh', ['prod'], node.cliEnv({
        HOME: adminHome, VAULT_TOKEN: adminToken, DATABASE_ADDRESS: `127.0.0.1:${pg.layout.port}`, DATABASE_ADMIN_PASSWORD_FILE: handedOver,
      }));
      expect(engine.code, engine.stderr).to.equal(0);
      expect(engine.stdout).to.contain('rotated the password of vault_admin (database/rotate-root/saas-prod)');
      expect(engine.stdout).to.contain('wrote role saas-app-prod');

      // Sign-in: Vault's OpenID Connect provider, made with a root token regenerated by the admin
      // and a quorum of keys (generate-root.sh) and revoked at once, before the agent's first render
      // (prod's is every 5 minutes). Outside dev the issuer and the redirect are https.
      const identity = await addIdentityProviderAfterBootstrap(node, adminToken, unsealKeys, tlsRedirectUrl,
        { appEnv: 'prod', caFile: tls.ca });

      // The app: its own wrapped secret id (the orchestrator), the agent rendering dynamic credentials.
      const ownCredentials = join(await tempDir('credentials'), 'approle');
      await mkdir(ownCredentials, { recursive: true });
      await writeFile(join(ownCredentials, 'role-id'), await readFile(join(credentials, 'role-id')));
      await issueSecretId(join(ownCredentials, 'secret-id'));
      prodAgent = await startProdAgent(node, tls, ownCredentials, { DATABASE_CREDENTIALS: 'dynamic' });
      registerSecret('agent token (dynamic)', await readFile(prodAgent.token, 'utf8'));
      const rendered = JSON.parse(await readFile(prodAgent.rendered, 'utf8')) as {
        database: { path: string; lease: { duration: number }; data: { username: string; password: string } };
      };
      registerSecret('dynamic prod database password', rendered.database.data.password);
      expect(rendered.database.path).to.equal('database/creds/saas-app-prod');
      expect(rendered.database.lease.duration).to.equal(3600);
      app = await startService(readSettings({
        SECRETS_MODE: 'agent', APP_ENV: 'prod', DATABASE_CREDENTIALS: 'dynamic', PORT: '0', ADMIN_PORT: '0', DRAIN_DELAY_MS: '0',
        VAULT_ADDR: node.addr, VAULT_CACERT: tls.ca, SECRETS_FILE: prodAgent.rendered, VAULT_TOKEN_FILE: prodAgent.token,
        DATABASE_HOST: '127.0.0.1', DATABASE_PORT: String(pg.layout.port), DATABASE_NAME: 'saas',
        // The test stands for the service's TLS proxy: X-Forwarded-Proto: https from loopback.
        TRUSTED_PROXIES: '127.0.0.1', ...identity.serviceEnv,
      }), {}, capturingLogger().logger);
      const base = `http://127.0.0.1:${app.port}`;
      const overTls = { 'X-Forwarded-Proto': 'https' };
      const signedIn = await identity.signIn(base, 'acme', overTls);
      expect(signedIn.tenant).to.equal('acme');
      expect(signedIn.cookies.find((c) => c.name === '__Host-saas_session')).to.include({ secure: true, httpOnly: true });
      const created = await fetch(`${base}/api/projects`, {
        method: 'POST', headers: { ...overTls, 'Content-Type': 'application/json', Cookie: signedIn.cookieHeader },
        body: JSON.stringify({ name: 'prod' }),
      });
      expect(created.status).to.equal(201);
      expect(await pg.query("SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = 'saas' AND usename LIKE 'v-%'"))
        .to.equal(rendered.database.data.username);
      // The admin can rotate what Vault holds of PostgreSQL at any time; the users keep coming.
      const rotated = await asAdmin(['write', '-f', 'database/rotate-root/saas-prod']);
      expect(rotated.code, rotated.stderr).to.equal(0);
      expect((await asAdmin(['read', 'database/creds/saas-app-prod'])).code, 'the admin cannot read app users').to.equal(2);
    } finally {
      await app?.close();
      await prodAgent?.proc.stop();
      // Its users go before PostgreSQL does: Vault revokes a lease by connecting to drop the user.
      await asAdmin(['write', '-f', 'sys/leases/revoke-prefix/database/creds/saas-app-prod']);
      await pg.stop();
    }
  });

  it('the agent and the service run; a rotated secret id\'s predecessor is destroyed by accessor, the service keeps its token', async function () {
    agent = await startProdAgent(node, tls, credentials);
    log = capturingLogger();
    service = await startService(readSettings({
      SECRETS_MODE: 'agent', APP_ENV: 'prod', PORT: '0', ADMIN_PORT: '0', DRAIN_DELAY_MS: '0', VAULT_ADDR: node.addr, VAULT_CACERT: tls.ca,
      SECRETS_FILE: agent.rendered, VAULT_TOKEN_FILE: agent.token, TOKEN_CHECK_MAX_INTERVAL_MS: '1000', VAULT_REQUEST_TIMEOUT_MS: '1000',
    }), {}, log.logger);
    const url = `http://127.0.0.1:${service.port}/readyz`;
    expect(await statusOf(url)).to.equal(200);
    const agentToken = (await readFile(agent.token, 'utf8')).trim();
    registerSecret('agent token', agentToken);
    expect(await accessors(), 'the first secret id was single-use and is gone').to.deep.equal([]);

    // The orchestrator's schedule: a fresh wrapped secret id for the agent's next login, then
    // another one (rotation) over it. The first is no longer in any file but still valid.
    const secretIdFile = join(credentials, 'secret-id');
    await issueSecretId(secretIdFile);
    const [older] = await accessors();
    await sleep(1100); // creation times one second apart at least
    await issueSecretId(secretIdFile);
    const both = await accessors();
    expect(both).to.have.length(2);
    const created = async (accessor: string) => {
      const lookup = await asAdmin(['write', '-format=json', 'auth/approle/role/saas-app-prod/secret-id-accessor/lookup',
        `secret_id_accessor=${accessor}`]);
      expect(lookup.code, lookup.stderr).to.equal(0);
      return Date.parse((JSON.parse(lookup.stdout) as { data: { creation_time: string } }).data.creation_time);
    };
    const [oldest] = (await Promise.all(both.map(async (a) => [a, await created(a)] as const))).sort((a, b) => a[1] - b[1]);
    expect(oldest?.[0]).to.equal(older);
    const destroyed = await asAdmin(['write', 'auth/approle/role/saas-app-prod/secret-id-accessor/destroy', `secret_id_accessor=${older ?? ''}`]);
    expect(destroyed.code, destroyed.stderr).to.equal(0);
    expect(await accessors()).to.deep.equal(both.filter((a) => a !== older));

    expect((await poll(url, 3000, 250)).filter((s) => s !== 200)).to.deep.equal([]);
    expect((await httpsGet(`${node.addr}/v1/auth/token/lookup-self`, tls, agentToken)).status, 'the agent keeps its token').to.equal(200);
  });

  it('kill-switch.sh locks the role and takes every token and secret id away: the service halts within its check interval', async function () {
    if (service === undefined || agent === undefined) this.skip();
    const url = `http://127.0.0.1:${service.port}/readyz`;
    const agentToken = (await readFile(agent.token, 'utf8')).trim();
    const killed = await adminScript('kill-switch.sh', ['prod']);
    const at = Date.now();
    expect(killed.code, killed.stderr).to.equal(0);
    expect(killed.stdout).to.contain("locked auth/approle/role/saas-app-prod (secret_id_bound_cidrs 0.0.0.0/32; was ''");
    expect(killed.stdout).to.contain('destroyed 1 secret id(s) of auth/approle/role/saas-app-prod');
    expect(killed.stdout).to.match(/revoked [1-9]\d* token\(s\) with the policy saas-app-prod/);
    expect(killed.stdout).to.contain('database/creds/saas-app-prod');
    await timeUntil(url, 503, 3000);
    expect(Date.now() - at, 'within the check interval (1 s) and a lookup').to.be.at.most(2500);
    expect(log.lines.filter((l) => l.level === 'fatal').at(-1)).to.include({ code: 'vault_token_invalid' });
    expect((await httpsGet(`${node.addr}/v1/auth/token/lookup-self`, tls, agentToken)).status).to.equal(403);
    expect(await accessors()).to.deep.equal([]);
  });

  it('stays halted while the orchestrator delivers a fresh secret id and the agent keeps trying: the lock refuses the login', async function () {
    if (service === undefined || agent === undefined) this.skip();
    const url = `http://127.0.0.1:${service.port}/readyz`;
    // What the courier does every period: a fresh wrapped secret id in the agent's file. The
    // agent reads it at its next try (at most the shipped max_backoff away) and removes it.
    const secretIdFile = join(credentials, 'secret-id');
    await issueSecretId(secretIdFile);
    const bound = (await maxBackoffMs()) + 5000;
    const statuses: number[] = [];
    const deadline = Date.now() + bound;
    while (await stat(secretIdFile).then(() => true, () => false)) {
      if (Date.now() > deadline) throw new Error(`the agent did not read the fresh secret id within ${bound} ms`);
      statuses.push(await statusOf(url));
      await sleep(250);
    }
    const refused = Date.now() + 10_000;
    while (!(await agent.proc.log()).includes('unauthorized by CIDR restrictions on the role')) {
      if (Date.now() > refused) throw new Error(`no refused login in the agent's log:\n${(await agent.proc.log()).split('\n').slice(-10).join('\n')}`);
      statuses.push(await statusOf(url));
      await sleep(250);
    }
    // An agent that keeps retrying a destroyed secret id (as compose's does for a minute) locks the
    // role id out after 5 failures: --reopen lifts that too.
    const roleId = (await readFile(join(credentials, 'role-id'), 'utf8')).trim();
    for (let i = 0; i < 5; i++) {
      const failed = await cli(node.cliEnv(), ['write', 'auth/approle/login', `role_id=${roleId}`, 'secret_id=-'], randomBytes(16).toString('hex'));
      expect(failed.code).to.not.equal(0);
    }
    statuses.push(...await poll(url, 2000, 250));
    expect(statuses.filter((status) => status !== 503), 'every /readyz answer during the lock').to.deep.equal([]);
    expect(agent.proc.child.exitCode, 'the agent keeps trying').to.equal(null);
  });

  it('kill-switch.sh --reopen restores the role: the same agent and service come back by themselves within max_backoff + the check interval', async function () {
    if (service === undefined || agent === undefined) this.skip();
    const pid = agent.proc.child.pid;
    const revoked = await readFile(agent.token, 'utf8');
    const reopened = await adminScript('kill-switch.sh', ['--reopen', 'prod']);
    expect(reopened.code, reopened.stderr).to.equal(0);
    expect(reopened.stdout).to.contain("restored secret_id_bound_cidrs of auth/approle/role/saas-app-prod to ''");
    const field = await asAdmin(['read', '-field=secret_id_bound_cidrs', 'auth/approle/role/saas-app-prod']);
    expect(field.stdout.trim(), 'exactly what was there').to.equal('[]');
    // HashiCorp Vault's agent retries a secret id that no longer logs in (OpenBao's logs in with
    // the one it read during the lock): the courier's next delivery, as it does whenever
    // the file is gone. Then the agent's next try (at most max_backoff away), the render and the
    // service's check of the new token.
    await issueSecretId(join(credentials, 'secret-id'));
    const bound = (await maxBackoffMs()) + 5000;
    const deadline = Date.now() + bound;
    while (await readFile(agent.token, 'utf8').catch(() => revoked) === revoked) {
      if (Date.now() > deadline) {
        throw new Error(`no new token within ${bound} ms of the reopen; the agent's log ends:\n${(await agent.proc.log()).split('\n').slice(-15).join('\n')}`);
      }
      await sleep(100);
    }
    await timeUntil(`http://127.0.0.1:${service.port}/readyz`, 200, 15_000);
    expect(agent.proc.child.exitCode, 'the agent never exited').to.equal(null);
    expect(agent.proc.child.pid, 'the same agent process').to.equal(pid);
    const again = await adminScript('kill-switch.sh', ['--reopen', 'prod']);
    expect(again.stdout).to.contain('saas-app-prod is not locked (no record at secret/saas-kill-switch/prod): nothing to reopen');
  });

  it('a locked role id (5 failed logins) refuses even a valid secret id until unlock-role-id.sh', async function () {
    // Not registered as a secret: the unlock endpoint names the role id in its path, and audit
    // devices log paths in clear (the plan says so). The role id alone logs nothing in.
    const roleId = (await readFile(join(credentials, 'role-id'), 'utf8')).trim();
    const loginWith = (secretId: string) => cli(node.cliEnv(), ['write', '-format=json', 'auth/approle/login', `role_id=${roleId}`, 'secret_id=-'], secretId);
    for (let i = 0; i < 5; i++) expect((await loginWith(randomBytes(16).toString('hex'))).code).to.not.equal(0);
    const wrappedFile = join(await tempDir('wrapped'), 'secret-id');
    await issueSecretId(wrappedFile);
    const unwrapped = await cli(node.cliEnv({ VAULT_TOKEN: (await readFile(wrappedFile, 'utf8')).trim() }), ['unwrap', '-field=secret_id']);
    const secretId = unwrapped.stdout.trim();
    registerSecret('unwrapped secret id', secretId);
    const locked = await loginWith(secretId);
    expect(locked.code).to.not.equal(0);
    const unlocked = await adminScript('unlock-role-id.sh', [join(credentials, 'role-id')]);
    expect(unlocked.code, unlocked.stderr).to.equal(0);
    const ok = await loginWith(secretId);
    expect(ok.code, ok.stderr).to.equal(0);
    registerSecret('app token (test login)', (JSON.parse(ok.stdout) as { auth: { client_token: string } }).auth.client_token);
  });
});
